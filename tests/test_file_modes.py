"""Other users of the machine (issue 12 item 7): the data dir holds cookies, logins,
proxy passwords and keys, so nothing in it is open to group or others. The whole flow
(`browserfarm up`, a window opened and closed, a recorded v5 worker) is walked by
tests/test_datadir.py with ``open_to_others``; here, an older install is closed."""
import os
import stat
import subprocess
import sys
from pathlib import Path


def open_to_others(root: Path) -> list[str]:
    """Files and folders under ``root`` (itself included) that group or others may
    read, write or enter; symbolic links (Firefox's ``lock``) have no mode of their own."""
    return [f"{p.relative_to(root)} {stat.filemode(p.lstat().st_mode)}"
            for p in [root, *root.rglob("*")]
            if not p.is_symlink() and p.lstat().st_mode & 0o077]


def test_an_open_data_dir_of_an_older_version_is_closed_and_the_database_is_private(
        tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # as an older version left it
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    old_umask = os.umask(0o022)  # the usual umask, which the CLI must not keep
    try:
        subprocess.run([sys.executable, "-m", "browserfarm.cli", "--data-dir", str(data_dir),
                        "db", "upgrade"], env=env, check=True, capture_output=True,
                       timeout=120)
    finally:
        os.umask(old_umask)
    assert (data_dir / "browserfarm.db").exists()
    assert open_to_others(data_dir) == []

"""The data dir (``BROWSERFARM_DATA_DIR``, default ``./var``): every file and folder
the farm keeps in it, named once here, each declared as

- STATE: back it up; lost, it loses something a user made or a secret;
- CACHE: made again from state, or only read by people diagnosing;
- RUNTIME: means something only while the processes that wrote it run.

Code asks a ``DataDir`` (``settings.data``) for its paths instead of spelling them.
The README's "Back up and restore" section lists the STATE entries (a test compares).

Not in the data dir: a PostgreSQL database (``DATABASE_URL``), a secret key given as
``BROWSERFARM_SECRET_KEY``, and Chromium's worker profiles (in the system temp dir:
its sockets there must fit a Unix socket path, see plugins/chromium.py)."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

STATE, CACHE, RUNTIME = "state", "cache", "runtime"

log = logging.getLogger(__name__)


def keep_files_private() -> None:
    """From now on every file and folder this process and its children make is its
    user's alone (umask 077): the SQLite database and its -wal/-shm, profiles written by
    mozprofile or copied, Firefox's own files, archives, chunks, videos, logs. Called
    where a farm process starts (the CLI, the app factory), not at import."""
    os.umask(0o077)


class Entry:
    """One declared file or folder (a folder's name ends with ``/``). On the class it
    is the declaration; on a ``DataDir`` it is the path."""

    def __init__(self, name: str, kind: str, why: str, private: bool = False):
        self.name, self.kind, self.why = name, kind, why
        self.private = private  # a file of secrets: 0600
        self.folder = name.endswith("/")

    def __set_name__(self, owner, attr: str) -> None:
        self.attr = attr

    def __get__(self, data, owner=None):
        return self if data is None else data.root / self.name.rstrip("/")

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class DataDir:
    # ----- state: back it up ------------------------------------------------------------
    database = Entry("browserfarm.db", STATE,
                     "the farm's database (SQLite, when DATABASE_URL is not set)")
    secret_key = Entry("secret.key", STATE, "decrypts the proxy passwords in the database "
                       "(unless BROWSERFARM_SECRET_KEY is set)", private=True)
    credentials = Entry("credentials.json", STATE, "the embedded farm owner's token and v5 "
                        "key; the database keeps only their digests", private=True)
    agent_login = Entry("agent.json", STATE, "this desktop agent's login to its cloud and "
                        "its Local API token", private=True)
    ssh_known_hosts = Entry("ssh_known_hosts", STATE, "SSH proxies' host keys trusted on "
                            "first use; lost, a changed key would be trusted again")
    account_known_hosts = Entry("ssh-known-hosts/", STATE, "the server's SSH proxy host "
                                "keys, one file per account, trusted on first use")
    profile_chunks = Entry("profile-chunks/", STATE, "the cloud's stored window profiles "
                           "(each account's content-addressed chunks, named by the "
                           "database's archives)")
    window_profiles = Entry("firefox-profiles/", STATE, "this agent's window profiles; the "
                            "newest changes may not have reached the cloud yet")
    pending_uploads = Entry("pending-uploads/", STATE, "marks of window profiles not yet "
                            "sent to the cloud; lost, they are never sent")
    videos = Entry("videos/", STATE, "recordings of v5 workers, served to clients until "
                   "worker_retention_days")

    # ----- cache: made again, or for diagnosis --------------------------------------------
    launch_configs = Entry("firefox-launch-configs/", CACHE, "what each window was last "
                           "opened with; written again at every open")
    profile_zips = Entry("uploaded-profile-zips/", CACHE, "the local ZIP a close answers "
                         "with; the same files as the archive in the cloud")
    logs = Entry("logs/", CACHE, "browsers' output, for diagnosis only")

    # ----- runtime: only while the farm runs ----------------------------------------------
    open_windows = Entry("open-windows.json", RUNTIME, "the windows open on this desktop, "
                         "for a restarted agent to adopt; holds proxy credentials",
                         private=True)
    agent_lock = Entry("agent.lock", RUNTIME, "one agent per data dir")
    relay_sockets = Entry("relays/", RUNTIME, "the Unix sockets open windows' browsers "
                          "reach their relays by (only this user may connect)")
    local_api = Entry("local-api.json", RUNTIME, "where the running agent listens, for "
                      "`browserfarm local info`")
    rate_limit = Entry("rate-limit.sqlite", RUNTIME, "v5 rate-limit counts of the current "
                       "time windows, shared by this host's API processes")
    live_view_sockets = Entry("live-view/", RUNTIME, "the Unix sockets of the VNC servers "
                              "showing browsers' displays to the dashboard (only this user "
                              "may connect)")
    worker_locks = Entry("locks/", RUNTIME, "commands to one worker's browser, one at a "
                         "time across processes")
    runner_locks = Entry("runners/", RUNTIME, "one runner per name and data dir")
    worker_profiles = Entry("worker-profiles/", RUNTIME, "running v5 workers' throw-away "
                            "browser profiles")
    warm_profiles = Entry("warm-profiles/", RUNTIME, "profiles of the warm pool's browsers; "
                          "emptied when a runner starts")

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def entries(cls) -> list[Entry]:
        return [v for v in vars(cls).values() if isinstance(v, Entry)]

    @classmethod
    def entry_of(cls, relative: Path | str) -> Entry | None:
        """The entry a path (relative to the data dir) belongs to: itself, inside a
        declared folder, or a companion of a declared file (SQLite's ``-wal``/``-shm``,
        a ``.part`` being written)."""
        parts = Path(relative).parts
        for entry in cls.entries():
            if entry.folder:
                if parts and parts[0] == entry.name.rstrip("/"):
                    return entry
            elif len(parts) == 1 and (parts[0] == entry.name or
                                      re.fullmatch(re.escape(entry.name) + r"[-.].+", parts[0])):
                return entry
        return None

    # ----- the files inside the folders -------------------------------------------------

    def account_chunks(self, account_id: int) -> Path:
        """One account's chunks: accounts never share one."""
        return self.profile_chunks / f"account-{account_id}"

    def profile_chunk(self, account_id: int, digest: str) -> Path:
        return self.account_chunks(account_id) / digest[:2] / digest

    def account_chunks_lock(self, account_id: int) -> Path:
        """Held to store or collect an account's chunks."""
        return self.profile_chunks / f"account-{account_id}.lock"

    def shared_profile_chunk(self, digest: str) -> Path:
        """Where chunks were, shared by all accounts, before migration 011: read for
        the accounts whose archives named them then."""
        return self.profile_chunks / digest[:2] / digest

    def account_ssh_known_hosts(self, account_id: int) -> Path:
        """The SSH host keys one account's proxies were first seen with: accounts
        never decide a host's key for each other."""
        return self.account_known_hosts / f"account-{int(account_id)}"

    def window_profile(self, uuid: str) -> Path:
        return self.window_profiles / uuid

    def pending_upload(self, uuid: str) -> Path:
        return self.pending_uploads / uuid

    def relay_socket(self, uuid: str) -> Path:
        """A window's relay socket, in a folder only we may enter: relays/, or where the
        data dir's path is too long for a Unix socket's (108 bytes), a new 0700 folder
        of ours in the temp dir (``release_relay_socket`` removes it). A too long path
        must not make the relay an open TCP one, which anyone local could use."""
        name = hashlib.blake2s(uuid.encode(), digest_size=8).hexdigest()  # short, safe
        path = self.relay_sockets / name
        if len(os.fsencode(path.absolute())) < 108:
            return path
        return Path(tempfile.mkdtemp(prefix=RELAY_FOLDER_PREFIX)) / name

    def live_view_socket(self, key: str) -> Path:
        """The VNC socket of the display ``key`` names (liveview.LocalDisplay)."""
        return self.live_view_sockets / key

    def launch_config(self, uuid: str) -> Path:
        return self.launch_configs / f"{uuid}.json"

    def profile_zip(self, uuid: str) -> Path:
        return self.profile_zips / f"{uuid}.zip"

    def window_log(self, uuid: str) -> Path:
        return self.logs / f"{uuid}.log"

    def worker_log(self, worker_id: int) -> Path:
        return self.logs / f"worker-{worker_id}.log"

    @property
    def warm_log(self) -> Path:
        return self.logs / "warm.log"

    def video(self, worker_id: int) -> Path:
        return self.videos / f"{worker_id}.mp4"

    def video_partial(self, worker_id: int) -> Path:
        """The video while it is recorded: renamed to video() once complete."""
        return self.videos / f"{worker_id}.partial.mp4"

    def worker_lock(self, worker_id: int) -> Path:
        return self.worker_locks / f"worker-{worker_id}.lock"

    def runner_lock(self, runner_name: str) -> Path:
        return self.runner_locks / (re.sub(r"[^\w.-]", "_", runner_name) + ".lock")

    def worker_profile(self, worker_id: int) -> Path:
        return self.worker_profiles / str(worker_id)

    def warm_profile(self, unique: str) -> Path:
        return self.warm_profiles / unique

    # ----- making them --------------------------------------------------------------------

    def create(self) -> Path:
        """The data dir itself, closed to other users (0700): a new one, and one an
        older version left open (0755) once this user owns it."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o077:
            try:
                os.chmod(self.root, 0o700)
            except PermissionError:  # another user's folder: say so, work on
                log.warning("the data dir %s is open to other users", self.root)
        return self.root

    def prepare(self, path: Path) -> Path:
        """``path`` (inside the data dir), with the folders it goes in made."""
        self.make_folder(Path(path).parent)
        return path

    def make_folder(self, path: Path) -> Path:
        """A folder inside the data dir and those it is in; new ones are 0700. Also a
        relay socket's folder in the temp dir (``relay_socket``), made again when an
        adopted window's was removed: an ``OSError`` if it is not ours alone."""
        if _is_relay_folder(Path(path)):
            return _own_relay_folder(Path(path))
        self.create()
        folder = self.root
        for part in Path(path).relative_to(self.root).parts:
            folder = folder / part
            folder.mkdir(mode=0o700, exist_ok=True)
        return path

    def write_private(self, path: Path, data: str | bytes) -> None:
        """Replace a file of secrets at once (readers never see half of it), 0600."""
        self.prepare(path)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(partial, 0o600)  # an older partial file kept its mode
        os.replace(partial, path)


# ----- relay sockets outside the data dir (its path too long for a socket) -------------

RELAY_FOLDER_PREFIX = "browserfarm-relay-"


def _is_relay_folder(folder: Path) -> bool:
    return (folder.name.startswith(RELAY_FOLDER_PREFIX)
            and folder.parent == Path(tempfile.gettempdir()))


def _own_relay_folder(folder: Path) -> Path:
    """``folder``, made 0700 when missing; refused (``OSError``) when someone else's,
    a link, or open to others (another user of the temp dir may have made it)."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()
            or info.st_mode & 0o077):
        raise PermissionError(f"{folder} is not a folder of this user's alone")
    return folder


def release_relay_socket(path: str | Path | None) -> None:
    """Remove a relay socket's folder in the temp dir once its relay stopped (those in
    the data dir stay: relays/ is shared)."""
    if path is not None and _is_relay_folder(Path(path).parent):
        shutil.rmtree(Path(path).parent, ignore_errors=True)

"""Profiles that follow the user: a closed window's profile goes to the cloud as
content-addressed chunks (a file that did not change is not sent again), and a
machine without a local copy gets it back from there.

Only the profile's data files travel (``is_data_file``): what the agent sends is all a
manifest may name. The cloud refuses any other manifest when it is saved, and the
desktop checks again before writing (``check_manifest``): it does not trust the cloud
either. Left out because a planted copy would change the browser or run code:
``prefs.js``, ``user.js``, extensions and their settings, ``chrome/``,
``distribution/``, ``*.xpi``, ``pkcs11.txt`` (loads libraries), ``handlers.json``
(opens downloads with programs), search engines, ``cert9.db`` (trusted roots)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from browserfarm.errors import InvalidInput, UpstreamError

CHUNK_BYTES = 4 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Firefox's files of user data: cookies, history and bookmarks, passwords, form
# history, site permissions and settings, open tabs, site storage.
DATA_FILES = {"cookies.sqlite", "places.sqlite", "favicons.sqlite", "formhistory.sqlite",
              "permissions.sqlite", "content-prefs.sqlite", "webappsstore.sqlite",
              "storage.sqlite", "key4.db", "logins.json", "logins-backup.json", "logins.db",
              "sessionstore.jsonlz4", "SiteSecurityServiceState.bin",
              "SiteSecurityServiceState.txt", "xulstore.json", "containers.json",
              "times.json", "storage/ls-archive.sqlite"}
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")  # the newest writes of a database
# Sites' storage (IndexedDB, localStorage, Cache API) and older copies of the tabs;
# the browser's own privileged storage is not a site's.
DATA_FOLDERS = ("storage/default/", "storage/permanent/", "sessionstore-backups/")
NOT_DATA_FOLDERS = ("storage/permanent/chrome/",)
NOT_DATA_SUFFIXES = (".xpi", ".tmp")

# What one archive may make a desktop write.
MAX_FILES = 20_000
MAX_PROFILE_BYTES = 8 * 1024**3
MAX_PATH_CHARS = 1024
MAX_PATH_DEPTH = 16


def is_data_file(name: str) -> bool:
    """Whether ``name`` (relative, with ``/``) is one of the profile's data files."""
    if name.endswith(NOT_DATA_SUFFIXES):
        return False
    base = next((name[:-len(s)] for s in SQLITE_COMPANIONS if name.endswith(s)), name)
    if base in DATA_FILES or name in DATA_FILES:
        return True
    return name.startswith(DATA_FOLDERS) and not name.startswith(NOT_DATA_FOLDERS)


def _may_hold_data(folder: str) -> bool:
    """Whether walking into ``folder`` (relative, ending with ``/``) can find any."""
    if folder.startswith(NOT_DATA_FOLDERS):
        return False
    return any(folder.startswith(p) or p.startswith(folder) for p in DATA_FOLDERS)


def profile_files(profile_dir: Path) -> list[Path]:
    """The data files, relative to ``profile_dir``, in a stable order."""
    kept = []
    for root, dirs, files in os.walk(profile_dir):
        relative_root = Path(root).relative_to(profile_dir)
        dirs[:] = sorted(d for d in dirs
                         if _may_hold_data((relative_root / d).as_posix() + "/"))
        for name in sorted(files):
            relative = relative_root / name
            path = Path(root) / name
            if (is_data_file(relative.as_posix()) and path.is_file()
                    and not path.is_symlink()):
                kept.append(relative)
    return kept


def check_path(name, field: str) -> None:
    """A data file's name as a manifest gives it: relative, no ``..``, bounded."""
    if not isinstance(name, str) or not name or len(name) > MAX_PATH_CHARS:
        raise InvalidInput(field, f"a file's path is 1 to {MAX_PATH_CHARS} characters")
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name or "\0" in name
            or any(p in ("", ".", "..") for p in parts)):
        raise InvalidInput(field, f"{name!r} is not a relative path in the profile")
    if len(parts) > MAX_PATH_DEPTH:
        raise InvalidInput(field, f"a file is at most {MAX_PATH_DEPTH} folders deep")
    if not is_data_file(name):
        raise InvalidInput(field, f"{name!r} is not one of the profile's data files")


def check_manifest(manifest) -> dict:
    """``manifest`` as ``{path: {"size", "chunks"}}`` if a desktop may write it, else
    ``InvalidInput`` naming what is wrong: data files only, each's size the bytes of
    its chunks (4 MiB each, the last one less), bounded in files and bytes."""
    if not isinstance(manifest, dict):
        raise InvalidInput("manifest", "must be an object of path -> {size, chunks}")
    if len(manifest) > MAX_FILES:
        raise InvalidInput("manifest", f"a profile has at most {MAX_FILES} files")
    checked, total = {}, 0
    for name, entry in manifest.items():
        field = f"manifest.{name}"
        check_path(name, field)
        if not isinstance(entry, dict):
            raise InvalidInput(field, "must be an object {size, chunks}")
        size, chunks = entry.get("size"), entry.get("chunks")
        if type(size) is not int or not 0 <= size <= MAX_PROFILE_BYTES:
            raise InvalidInput(f"{field}.size",
                               f"must be a whole number of bytes, 0 to {MAX_PROFILE_BYTES}")
        if not isinstance(chunks, list) or not all(
                isinstance(d, str) and SHA256.match(d) for d in chunks):
            raise InvalidInput(f"{field}.chunks", "must be a list of SHA-256s in hex")
        count = -(-size // CHUNK_BYTES)  # the agent cuts files in CHUNK_BYTES
        if len(chunks) != count:
            raise InvalidInput(f"{field}.chunks", f"{size} bytes make {count} chunk(s) of "
                               f"{CHUNK_BYTES} bytes (the last one less)")
        total += size
        if total > MAX_PROFILE_BYTES:
            raise InvalidInput("manifest", f"a profile is at most {MAX_PROFILE_BYTES} bytes")
        checked[name] = {"size": size, "chunks": chunks}
    return checked


def manifest_of(profile_dir: Path) -> tuple[dict, dict]:
    """(manifest, where each chunk is): path -> {size, chunks}; sha -> (file, offset)."""
    manifest, places = {}, {}
    for relative in profile_files(profile_dir):
        chunks, size = [], 0
        with open(profile_dir / relative, "rb") as handle:
            while block := handle.read(CHUNK_BYTES):
                digest = hashlib.sha256(block).hexdigest()
                places.setdefault(digest, (relative, size, len(block)))
                chunks.append(digest)
                size += len(block)
        manifest[relative.as_posix()] = {"size": size, "chunks": chunks}
    return manifest, places


def push(cloud, uuid: str, profile_dir: Path, agent: str) -> dict:
    """Send what the cloud lacks, then record the archive."""
    manifest, places = manifest_of(profile_dir)
    missing = cloud.call("/browser/profile/missing", {"hashes": list(places)})["missing"]
    for digest in missing:
        relative, offset, length = places[digest]
        with open(profile_dir / relative, "rb") as handle:
            handle.seek(offset)
            cloud.send_bytes("/browser/profile/chunk", {"sha256": digest},
                             handle.read(length))
    committed = cloud.call("/browser/profile/commit", {"uuid": uuid, "manifest": manifest,
                                                       "agent": agent})
    return committed | {"sent": len(missing), "chunks": len(places)}


def pull(cloud, uuid: str, profile_dir: Path) -> bool:
    """Restore the latest archive into an empty ``profile_dir``; False when there is
    none. The whole manifest is checked before anything is written, each file is no
    longer than the manifest says, and the files appear only once all arrived (a
    restore that fails leaves ``profile_dir`` empty, to be tried again)."""
    latest = cloud.call("/browser/profile/latest", {"uuid": uuid})
    if not latest.get("manifest"):
        return False
    try:
        manifest = check_manifest(latest["manifest"])
    except InvalidInput as exc:
        raise UpstreamError(500, f"The cloud's profile archive is refused: {exc.msg}",
                            {"field": exc.field}) from None
    staging = profile_dir.with_name(profile_dir.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        for name, entry in manifest.items():
            target = staging.joinpath(*PurePosixPath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(cloud, target, name, entry)
        for child in staging.iterdir():
            os.replace(child, profile_dir / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def _write(cloud, path: Path, name: str, entry: dict) -> None:
    """One file of an archive from its chunks, no longer than its manifest says."""
    written = 0
    with open(path, "wb") as handle:
        for digest in entry["chunks"]:
            data = cloud.receive_bytes("/browser/profile/chunk/get", {"sha256": digest})
            if hashlib.sha256(data).hexdigest() != digest:
                raise ValueError(f"chunk {digest} arrived damaged")
            written += len(data)
            if written > entry["size"]:
                raise ValueError(f"{name} is larger than its manifest says")
            handle.write(data)


def zip_profile(profile_dir: Path, zip_path: Path) -> int:
    """The spec's local profile ZIP (the same files as the archive), in a folder that
    exists; its size."""
    partial = zip_path.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in profile_files(profile_dir):
            archive.write(profile_dir / relative, str(relative))
    os.replace(partial, zip_path)
    return zip_path.stat().st_size

"""What a profile manifest may name, as the cloud and the desktop both check it: only
the profile's data files, each a path every desktop writes where it says (macOS and
Windows compare names without case and drop trailing dots and spaces), bounded in
files, bytes, path length and depth.

Left out because a planted copy would change the browser or run code: ``prefs.js``,
``user.js``, extensions and their settings, ``chrome/``, ``distribution/``, ``*.xpi``,
``pkcs11.txt`` (loads libraries), ``handlers.json`` (opens downloads with programs),
search engines, ``cert9.db`` (trusted roots)."""
from __future__ import annotations

import re

from browserfarm.errors import InvalidInput

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
_FOLDED_FILES = {name.casefold() for name in DATA_FILES}

# What one archive may make a desktop write.
MAX_FILES = 20_000
MAX_PROFILE_BYTES = 8 * 1024**3
MAX_PATH_CHARS = 1024
MAX_PATH_DEPTH = 16


def is_data_file(name: str) -> bool:
    """Whether ``name`` (relative, with ``/``) is one of the profile's data files, on
    a desktop that ignores case too (``Chrome/`` is ``chrome/`` there)."""
    name = name.casefold()
    if name.endswith(NOT_DATA_SUFFIXES):
        return False
    base = next((name[:-len(s)] for s in SQLITE_COMPANIONS if name.endswith(s)), name)
    if base in _FOLDED_FILES or name in _FOLDED_FILES:
        return True
    return name.startswith(DATA_FOLDERS) and not name.startswith(NOT_DATA_FOLDERS)


def may_hold_data(folder: str) -> bool:
    """Whether a folder (relative, ending with ``/``) can hold any data file."""
    folder = folder.casefold()
    if folder.startswith(NOT_DATA_FOLDERS):
        return False
    return any(folder.startswith(p) or p.startswith(folder) for p in DATA_FOLDERS)


def check_path(name, field: str) -> None:
    """A file's path as a manifest gives it: relative, no ``..``, bounded, and written
    where it says on every desktop (no ``:``, backslash, trailing dot or space, which
    Windows reads otherwise). Whether it is a data file is ``is_data_file``."""
    if not isinstance(name, str) or not name or len(name) > MAX_PATH_CHARS:
        raise InvalidInput(field, f"a file's path is 1 to {MAX_PATH_CHARS} characters")
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name or "\0" in name or ":" in name
            or any(p in ("", ".", "..") or p.endswith((".", " ")) for p in parts)):
        raise InvalidInput(field, f"{name!r} is not a relative path in the profile")
    if len(parts) > MAX_PATH_DEPTH:
        raise InvalidInput(field, f"a file is at most {MAX_PATH_DEPTH} folders deep")


def is_sendable(name: str) -> bool:
    """Whether a manifest may name the file ``name``."""
    try:
        check_path(name, "name")
    except InvalidInput:
        return False
    return is_data_file(name)


def check_manifest(manifest, skip_others: bool = False) -> dict:
    """``manifest`` as ``{path: {"size", "chunks"}}`` if a desktop may write it, else
    ``InvalidInput`` naming what is wrong: data files only, each's size the bytes of
    its chunks (4 MiB each, the last one less), no file where another's folder is (nor
    two names differing in case only), bounded in files and bytes. With
    ``skip_others``, the files that are not data files are left out instead of refused
    (archives saved before the allow-list named ``prefs.js``, extensions...)."""
    if not isinstance(manifest, dict):
        raise InvalidInput("manifest", "must be an object of path -> {size, chunks}")
    if len(manifest) > MAX_FILES:
        raise InvalidInput("manifest", f"a profile has at most {MAX_FILES} files")
    checked, total = {}, 0
    for name, entry in manifest.items():
        field = f"manifest.{name}"
        check_path(name, field)
        if not is_data_file(name):
            if skip_others:
                continue
            raise InvalidInput(field, f"{name!r} is not one of the profile's data files")
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
    _check_one_place_each(checked)
    return checked


def _check_one_place_each(names) -> None:
    """Each file a place of its own on every desktop: none is another's folder, and no
    two differ in case only."""
    files = {}
    for name in names:
        folded = name.casefold()
        if folded in files:
            raise InvalidInput(f"manifest.{name}", f"{name!r} and {files[folded]!r} are one "
                               "file where names ignore case")
        files[folded] = name
    for name in names:
        parts = name.casefold().split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in files:
                raise InvalidInput(f"manifest.{files[folder]}",
                                   f"{files[folder]!r} is a file, and a folder of {name!r}")

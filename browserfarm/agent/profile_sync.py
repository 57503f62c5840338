"""Profiles that follow the user: a closed window's profile goes to the cloud as
content-addressed chunks (a file that did not change is not sent again), and a
machine without a local copy gets it back from there.

Only the profile's data files travel (``browserfarm.profile_manifest``): what the
agent sends is all a manifest may name. The cloud refuses any other manifest when it is
saved, and the desktop checks again before writing: it does not trust the cloud either.
An archive saved before that rule may name other files (``prefs.js``, extensions): the
desktop restores its data files and leaves the others out."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from browserfarm.errors import InvalidInput, UpstreamError
from browserfarm.profile_manifest import CHUNK_BYTES, check_manifest, is_sendable, may_hold_data

log = logging.getLogger(__name__)


def profile_files(profile_dir: Path) -> list[Path]:
    """The data files, relative to ``profile_dir``, in a stable order."""
    kept = []
    for root, dirs, files in os.walk(profile_dir):
        relative_root = Path(root).relative_to(profile_dir)
        dirs[:] = sorted(d for d in dirs
                         if may_hold_data((relative_root / d).as_posix() + "/"))
        for name in sorted(files):
            relative = relative_root / name
            path = Path(root) / name
            if (is_sendable(relative.as_posix()) and path.is_file()
                    and not path.is_symlink()):
                kept.append(relative)
    return kept


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
    none. The whole manifest is checked before anything is written (its files that are
    not data files left out), each file is no
    longer than the manifest says, and the files appear only once all arrived (a
    restore that fails leaves ``profile_dir`` empty, to be tried again)."""
    latest = cloud.call("/browser/profile/latest", {"uuid": uuid})
    if not latest.get("manifest"):
        return False
    try:
        manifest = check_manifest(latest["manifest"], skip_others=True)
    except InvalidInput as exc:
        raise UpstreamError(500, f"The cloud's profile archive is refused: {exc.msg}",
                            {"field": exc.field}) from None
    if skipped := len(latest["manifest"]) - len(manifest):
        log.warning("window %s: %d file(s) of its profile archive are not data files "
                    "(an archive from before the allow-list): not restored", uuid, skipped)
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
            data = cloud.receive_bytes("/browser/profile/chunk/get", {"sha256": digest},
                                       CHUNK_BYTES)
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

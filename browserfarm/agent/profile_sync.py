"""Profiles that follow the user: a closed window's profile goes to the cloud as
content-addressed chunks (a file that did not change is not sent again), and a
machine without a local copy gets it back from there."""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

CHUNK_BYTES = 4 * 1024 * 1024
# Caches and run-time files: rebuilt by Firefox, not worth carrying around.
SKIPPED_DIRS = {"cache2", "startupCache", "thumbnails", "crashes", "minidumps",
                "saved-telemetry-pings", "datareporting", "shader-cache", "safebrowsing",
                "OfflineCache", "jumpListCache", "storage/temporary"}
SKIPPED_FILES = {"lock", ".parentlock", "parent.lock", "sessionCheckpoints.json"}


def profile_files(profile_dir: Path) -> list[Path]:
    """The files worth keeping, relative to ``profile_dir``, in a stable order."""
    kept = []
    for root, dirs, files in os.walk(profile_dir):
        relative_root = Path(root).relative_to(profile_dir)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS
                         and str(relative_root / d) not in SKIPPED_DIRS)
        for name in sorted(files):
            if name in SKIPPED_FILES or name.endswith((".tmp", "-wal.tmp")):
                continue
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                kept.append(path.relative_to(profile_dir))
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
        manifest[str(relative)] = {"size": size, "chunks": chunks}
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
    none. Files are written whole (temp file, then rename)."""
    latest = cloud.call("/browser/profile/latest", {"uuid": uuid})
    manifest = latest.get("manifest")
    if not manifest:
        return False
    root = profile_dir.resolve()
    for name, entry in manifest.items():
        target = (profile_dir / name).resolve()
        if root not in target.parents:
            continue  # never outside the profile
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as handle:
            for digest in entry["chunks"]:
                data = cloud.receive_bytes("/browser/profile/chunk/get", {"sha256": digest})
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ValueError(f"chunk {digest} arrived damaged")
                handle.write(data)
        os.replace(partial, target)
    return True


def zip_profile(profile_dir: Path, zip_path: Path) -> int:
    """The spec's local profile ZIP (the same files as the archive), in a folder that
    exists; its size."""
    partial = zip_path.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in profile_files(profile_dir):
            archive.write(profile_dir / relative, str(relative))
    os.replace(partial, zip_path)
    return zip_path.stat().st_size

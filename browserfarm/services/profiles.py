"""Profile storage in the cloud: chunks stored once by their SHA-256 (a file that did
not change is not sent again), and per window the manifest of its latest archive."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from browserfarm import permissions as perm
from browserfarm.errors import InvalidInput, NotFound
from browserfarm.models import ProfileArchive, Window

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK_BYTES = 4 * 1024 * 1024


class ProfileStore:
    def __init__(self, farm, caller):
        self.farm = farm
        self.caller = caller
        self.data = farm.settings.data

    def missing(self, hashes: list[str]) -> list[str]:
        self.caller.require(perm.BROWSER_OPEN)
        for digest in hashes:
            _check(digest)
        return [h for h in dict.fromkeys(hashes) if not self._path(h).exists()]

    def put_chunk(self, digest: str, data: bytes) -> dict:
        self.caller.require(perm.BROWSER_OPEN)
        _check(digest)
        if len(data) > CHUNK_BYTES:
            raise InvalidInput("body", f"a chunk is at most {CHUNK_BYTES} bytes")
        if hashlib.sha256(data).hexdigest() != digest:
            raise InvalidInput("sha256", "the body does not have this SHA-256")
        path = self._path(digest)
        if not path.exists():
            self.data.prepare(path)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a chunk
        return {"sha256": digest, "size": len(data)}

    def get_chunk(self, digest: str) -> bytes:
        """Chunks are shared by content, so knowing a hash is the only way in; it is
        still asked for with the account's token."""
        self.caller.require(perm.BROWSER_OPEN)
        _check(digest)
        path = self._path(digest)
        if not path.exists():
            raise NotFound(f"No chunk {digest}")
        return path.read_bytes()

    def commit(self, window_ref: dict, manifest: dict, agent: str) -> dict:
        """Record an archive whose every chunk is already stored."""
        self.caller.require(perm.BROWSER_OPEN)
        window = self._window(window_ref)
        size, wanted = 0, []
        for name, entry in manifest.items():
            if name.startswith("/") or ".." in Path(name).parts:
                raise InvalidInput("manifest", f"{name!r} is not a relative path")
            for digest in entry.get("chunks", []):
                _check(digest)
                wanted.append(digest)
            size += int(entry.get("size", 0))
        absent = [h for h in dict.fromkeys(wanted) if not self._path(h).exists()]
        if absent:
            raise InvalidInput("manifest", f"{len(absent)} chunk(s) were never uploaded")
        archive = ProfileArchive.create(window=window.id, manifest=manifest, size=size,
                                        agent=agent)
        return {"id": archive.id, "files": len(manifest), "size": size}

    def latest(self, window_ref: dict) -> dict:
        self.caller.require(perm.BROWSER_OPEN)
        window = self._window(window_ref)
        archive = (ProfileArchive.select().where(ProfileArchive.window == window.id)
                   .order_by(ProfileArchive.id.desc()).first())
        if archive is None:
            return {"manifest": None}
        return {"id": archive.id, "manifest": archive.manifest, "size": archive.size}

    def _window(self, ref: dict) -> Window:
        return Window.by_ref(self.caller.account_id, ref)

    def _path(self, digest: str) -> Path:
        return self.data.profile_chunk(digest)


def _check(digest: str):
    if not isinstance(digest, str) or not SHA256.match(digest):
        raise InvalidInput("sha256", f"{digest!r} is not a SHA-256 in hex")

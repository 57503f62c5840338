"""Profile storage in the cloud: each account's chunks, stored once per account by
their SHA-256 (a file that did not change is not sent again), and per window the
manifest of its latest archive.

Accounts never share a chunk: one account can neither read nor learn of another's,
even of the same bytes (it stores its own copy). Each account has a quota
(``profile_quota_bytes``). Chunks no archive names are collected when an archive
replaces an older one, when windows are deleted for good, or when the quota is
reached; except those stored, reported present or committed within ``GC_GRACE``: an
agent asks ``missing``, uploads, then commits, and the chunks it was told are there
must still be there at its commit."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from browserfarm import permissions as perm
from browserfarm.db import one_of, write_transaction
from browserfarm.errors import InvalidInput, NotFound
from browserfarm.models import ProfileArchive, ProfileChunk, Window, utcnow
from browserfarm.profile_manifest import CHUNK_BYTES, SHA256, check_manifest

GC_GRACE = timedelta(hours=1)
log = logging.getLogger(__name__)


class ProfileStore:
    def __init__(self, farm, caller):
        self.farm = farm
        self.caller = caller
        self.data = farm.settings.data

    def missing(self, hashes: list[str]) -> list[str]:
        """Which of ``hashes`` this account has not stored; the others are spared by
        garbage collection for ``GC_GRACE`` (the commit they are for is coming)."""
        self.caller.require(perm.BROWSER_OPEN)
        for digest in hashes:
            _check(digest)
        wanted = list(dict.fromkeys(hashes))
        ProfileChunk.touch(self.account_id, wanted)
        stored = {c.sha256 for c in ProfileChunk.of(self.account_id, wanted)
                  if self._file(c.sha256) is not None}
        return [h for h in wanted if h not in stored]

    def put_chunk(self, digest: str, data: bytes) -> dict:
        self.caller.require(perm.BROWSER_OPEN)
        _check(digest)
        if len(data) > CHUNK_BYTES:
            raise InvalidInput("body", f"a chunk is at most {CHUNK_BYTES} bytes")
        if hashlib.sha256(data).hexdigest() != digest:
            raise InvalidInput("sha256", "the body does not have this SHA-256")
        self._check_quota(digest, len(data))
        with _locked(self.data, self.account_id):  # not while collecting, nor twice
            path = self.data.profile_chunk(self.account_id, digest)
            if not path.exists():
                self.data.write_private(path, data)  # whole or not at all, 0600
            ProfileChunk.insert(account=self.account_id, sha256=digest, size=len(data)
                                ).on_conflict(
                conflict_target=[ProfileChunk.account, ProfileChunk.sha256],
                update={ProfileChunk.touched_at: utcnow()}).execute()
        return {"sha256": digest, "size": len(data)}

    def get_chunk(self, digest: str) -> bytes:
        self.caller.require(perm.BROWSER_OPEN)
        _check(digest)
        path = (self._file(digest) if ProfileChunk.of(self.account_id, [digest]).exists()
                else None)
        if path is None:
            raise NotFound(f"No chunk {digest}")
        return path.read_bytes()

    def commit(self, window_ref: dict, manifest: dict, agent: str) -> dict:
        """Record an archive whose every chunk this account stored; it replaces the
        window's older ones."""
        self.caller.require(perm.BROWSER_OPEN)
        window = self._window(window_ref)
        manifest = check_manifest(manifest)
        wanted = list(dict.fromkeys(d for entry in manifest.values() for d in entry["chunks"]))
        ProfileChunk.touch(self.account_id, wanted)  # from now on, spared
        stored = {c.sha256 for c in ProfileChunk.of(self.account_id, wanted)}
        absent = [h for h in wanted if h not in stored]
        if absent:
            raise InvalidInput("manifest", f"{len(absent)} chunk(s) were never uploaded")
        size = sum(entry["size"] for entry in manifest.values())
        with write_transaction(self.farm.db):
            archive = ProfileArchive.create(window=window.id, manifest=manifest, size=size,
                                            agent=agent)
            replaced = ProfileArchive.delete().where(ProfileArchive.window == window.id,
                                                     ProfileArchive.id != archive.id).execute()
        if replaced:
            collect_garbage(self.farm, self.account_id)
        return {"id": archive.id, "files": len(manifest), "size": size}

    def latest(self, window_ref: dict) -> dict:
        self.caller.require(perm.BROWSER_OPEN)
        window = self._window(window_ref)
        archive = (ProfileArchive.select().where(ProfileArchive.window == window.id)
                   .order_by(ProfileArchive.id.desc()).first())
        if archive is None:
            return {"manifest": None}
        return {"id": archive.id, "manifest": archive.manifest, "size": archive.size}

    @property
    def account_id(self) -> int:
        return self.caller.account_id

    def _check_quota(self, digest: str, size: int) -> None:
        quota = self.farm.settings.profile_quota_bytes
        if not quota or ProfileChunk.of(self.account_id, [digest]).exists():
            return

        def fits() -> bool:
            return int(ProfileChunk.used_bytes(self.account_id)) + size <= quota

        if not fits() and (collect_garbage(self.farm, self.account_id) == 0 or not fits()):
            raise InvalidInput("body", "the account's profile storage is full (its quota "
                               f"is {quota} bytes)", quota=quota)

    def _file(self, digest: str) -> Path | None:
        """Where the bytes of the account's chunk are: its own copy, or one stored
        before accounts had their own (migration 011)."""
        for path in (self.data.profile_chunk(self.account_id, digest),
                     self.data.shared_profile_chunk(digest)):
            if path.exists():
                return path
        return None

    def _window(self, ref: dict) -> Window:
        return Window.by_ref(self.caller.account_id, ref)


def collect_garbage(farm, account_id: int) -> int:
    """Delete the account's chunks that no archive names and that were not touched
    within ``GC_GRACE``; how many. Uploads wait meanwhile (the lock), and a chunk
    touched since it was picked is kept (the delete checks again)."""
    data, cutoff, gone = farm.settings.data, utcnow() - GC_GRACE, []
    with _locked(data, account_id):
        named = ProfileArchive.chunks_of_account(account_id)
        stale = [(c.id, c.sha256) for c in ProfileChunk.select(
            ProfileChunk.id, ProfileChunk.sha256).where(
            ProfileChunk.account == account_id, ProfileChunk.touched_at < cutoff)
            if c.sha256 not in named]
        with write_transaction(farm.db):
            for chunk_id, digest in stale:
                if ProfileChunk.delete().where(ProfileChunk.id == chunk_id,
                                               ProfileChunk.touched_at < cutoff).execute():
                    gone.append(digest)
        for digest in gone:
            data.profile_chunk(account_id, digest).unlink(missing_ok=True)
        # A chunk from before accounts had their own: gone once no account has it.
        kept = {sha for (sha,) in ProfileChunk.select(ProfileChunk.sha256).where(
            one_of(farm.db, ProfileChunk.sha256, gone)).tuples()} if gone else set()
        for digest in set(gone) - kept:
            data.shared_profile_chunk(digest).unlink(missing_ok=True)
    return len(gone)


def collect_after_delete(farm, account_id: int) -> None:
    """``collect_garbage`` once windows were deleted for good: the delete is done
    whatever happens here, so a failure of the files is logged, not answered (the next
    collection finds the same chunks)."""
    try:
        collect_garbage(farm, account_id)
    except OSError:
        log.exception("account %s: collecting profile chunks failed", account_id)


@contextmanager
def _locked(data, account_id: int):
    """The account's chunk lock, across this host's API processes and threads: one
    chunk written, or one collection, at a time."""
    path = data.prepare(data.account_chunks_lock(account_id))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check(digest: str):
    if not isinstance(digest, str) or not SHA256.match(digest):
        raise InvalidInput("sha256", f"{digest!r} is not a SHA-256 in hex")

"""v5's rate limit per user (``BROWSERFARM_RATE_LIMIT``), fixed windows on the
``limits`` library that flask-limiter is built on. Used directly: flask-limiter's own
per-request work was 60% of a v5 call's time in the API (docs/benchmarks.md).

Counts are shared by every API process of the host by default (``make run`` serves
with two): a small SQLite file of their own in the data dir. A farm of several API
hosts shares them through ``BROWSERFARM_RATE_LIMIT_STORAGE`` (``redis://...``, any
store of ``limits``)."""
from __future__ import annotations

import fcntl
import math
import os
import sqlite3
import threading
import time
from pathlib import Path

from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from browserfarm.datadir import DataDir
from browserfarm.errors import TooManyRequests


class RateLimit:
    def __init__(self, limit: str, storage_uri: str, data_dir: Path):
        self.text, self.item = limit, parse(limit)
        counts = (HostCounts(DataDir(data_dir).rate_limit) if not storage_uri
                  else storage_from_string(storage_uri))
        self.limiter = FixedWindowRateLimiter(counts)

    def hit(self, key: str) -> None:
        """Count one request; over the limit, ``TooManyRequests`` says when to come
        back."""
        if not self.limiter.hit(self.item, "v5", key):
            reset = self.limiter.get_window_stats(self.item, "v5", key).reset_time
            raise TooManyRequests(self.text, max(1, math.ceil(reset - time.time())))


_INCR = """INSERT INTO counts (key, count, expires) VALUES (?1, ?2, ?3)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires <= ?4 THEN ?2 ELSE count + ?2 END,
    expires = CASE WHEN expires <= ?4 THEN ?3 ELSE expires END
RETURNING count"""


class HostCounts(Storage):
    """Fixed-window counts in a SQLite file that the API processes of one host share:
    SQLite's own locking makes them exact across processes. Nothing in it needs to
    survive a crash (no fsync). ``limits``' memory store counts per process, and
    starts a timer thread on nearly every hit besides (docs/benchmarks.md)."""

    SWEEP_EVERY = 60.0  # s: expired keys (one-off addresses) are deleted this often

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self._local = threading.local()  # a connection per thread (and process)
        self._swept = time.time()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():  # never one from before a fork
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Two processes switching a new file to WAL at once: SQLite may answer
            # "database is locked" at once, without waiting out the busy timeout. A file
            # lock makes the set-up one at a time.
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")
                db.execute("CREATE TABLE IF NOT EXISTS counts (key TEXT PRIMARY KEY, "
                           "count INTEGER NOT NULL, expires REAL NOT NULL) WITHOUT ROWID")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        db = self._db()
        if now - self._swept > self.SWEEP_EVERY:
            self._swept = now
            db.execute("DELETE FROM counts WHERE expires <= ?", (now,))
        return db.execute(_INCR, (key, amount, now + expiry, now)).fetchone()[0]

    def get(self, key: str) -> int:
        row = self._db().execute("SELECT count FROM counts WHERE key = ? AND expires > ?",
                                 (key, time.time())).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires FROM counts WHERE key = ? AND expires > ?",
                                 (key, time.time())).fetchone()
        return row[0] if row else time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int:
        return self._db().execute("DELETE FROM counts").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counts WHERE key = ?", (key,))

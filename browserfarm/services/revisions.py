"""Account revisions: every change to an account's windows, groups or tags bumps the
account's ``revision`` in the same transaction. A list answer is then a pure function
of (account, revision, query), so each API process may keep recent answers: polling
scripts re-read pages far more often than windows change. Across processes and hosts
the revision lives in the database, so no answer outlives a change."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextlib import contextmanager

from browserfarm.db import write_transaction
from browserfarm.models import Account


@contextmanager
def account_write(farm, account_id: int):
    """A transaction that changes the account's windows, groups or tags. The revision
    is bumped first: that write takes the account's row lock (PostgreSQL) or the
    database's write lock (SQLite), so the account's writers take turns."""
    with write_transaction(farm.db):
        Account.update(revision=Account.revision + 1).where(Account.id == account_id).execute()
        yield


def current_revision(account_id: int) -> int:
    return Account.select(Account.revision).where(Account.id == account_id).scalar() or 0


class AnswerCache:
    """Recent answers by key, least recently used dropped first, at most ``max_bytes``
    of them (answers are sized by ``len``); thread-safe."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key, compute):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        size = len(value)
        if size > self.max_bytes // 4:
            return value  # too big to be worth keeping
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)
        return value


class EncodedJson(str):
    """A value already encoded as JSON text: cached answers are kept encoded, so a
    cache hit costs no serialisation at all."""

    @classmethod
    def of(cls, value) -> "EncodedJson":
        return cls(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

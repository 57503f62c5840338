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

import orjson

from browserfarm.db import Prepared, write_transaction
from browserfarm.models import Account


@contextmanager
def account_write(farm, account_id: int):
    """A transaction that changes the account's windows, groups or tags. The revision
    is bumped first: that write takes the account's row lock (PostgreSQL) or the
    database's write lock (SQLite), so the account's writers take turns."""
    with write_transaction(farm.db):
        Account.update(revision=Account.revision + 1).where(Account.id == account_id).execute()
        yield


_REVISION = Prepared(lambda: Account.select(Account.revision).where(Account.id == 0))


def current_revision(account_id: int) -> int:
    rows = _REVISION.tuples((), [account_id])
    return (rows[0][0] if rows else 0) or 0


class AnswerCache:
    """Recent answers by key, least recently used dropped first, at most ``max_bytes``
    of them (answers are sized by ``len``); thread-safe."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key, compute, size=len):
        """The value kept for ``key``, else ``compute()`` kept; ``size(value)``: its
        bytes, roughly."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()
        value_size = size(value)
        if value_size > self.max_bytes // 4:
            return value  # too big to be worth keeping
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, value_size)
                self._bytes += value_size
            while self._bytes > self.max_bytes:
                _, (_, dropped_size) = self._items.popitem(last=False)
                self._bytes -= dropped_size
        return value


def json_fragment(text: str) -> orjson.Fragment:
    """A JSON column's text, to be put into an answer as it is: decoding it only to
    encode it again was a third of a cold window list. As is when our encoding of its
    value would be that very text; else (rare) re-encoded as the answer encodes it.
    Python writes the columns compact, escaping what isn't ASCII; the answers don't
    escape it (so any "\\u" decodes), and PostgreSQL's jsonb writes ``"key": value``
    with a space (a merge's result)."""
    if "\\u" in text or '": ' in text:
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    return orjson.Fragment(text)


class EncodedJson(str):
    """A value already encoded as JSON text: cached answers are kept encoded, so a
    cache hit costs no serialisation at all."""

    @classmethod
    def of(cls, value) -> "EncodedJson":
        """``value`` encoded as ``json.dumps`` with compact separators and
        ``ensure_ascii=False`` encodes it, by orjson (a tenth of the time). The same
        text for strings, integers, booleans, None, lists and dicts with string keys;
        no floats (orjson writes some differently): JSON columns go in as
        ``json_fragment``s."""
        return cls(orjson.dumps(value).decode())

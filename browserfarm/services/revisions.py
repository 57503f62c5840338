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


class StoredJson:
    """JSON text as a column stores it, to be put into an answer as it is: decoding it
    only to encode it again was a third of a cold window list. Only for text that
    encodes the same either way (see ``of_column``)."""
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    @classmethod
    def of_column(cls, text: str):
        """``text`` as a ``StoredJson`` when our encoding of its value would be that
        very text, else its value. Python writes the columns compact, escaping what
        isn't ASCII; the answers don't escape it (so any "\\u" decodes), and
        PostgreSQL's jsonb writes ``"key": value`` with a space (a merge's result)."""
        if "\\u" in text or '": ' in text:
            return json.loads(text)
        return cls(text)


_PLACEHOLDER = "\0"  # no answer holds NUL: the API refuses it in bodies
_ENCODED_PLACEHOLDER = '"\\u0000"'


class EncodedJson(str):
    """A value already encoded as JSON text: cached answers are kept encoded, so a
    cache hit costs no serialisation at all."""

    @classmethod
    def of(cls, value) -> "EncodedJson":
        stored = []

        def placeholder(item):
            if not isinstance(item, StoredJson):
                raise TypeError(f"{type(item).__name__} is not JSON serializable")
            stored.append(item.text)
            return _PLACEHOLDER

        text = _dumps(value, default=placeholder)
        if stored:
            parts = text.split(_ENCODED_PLACEHOLDER)
            if len(parts) == len(stored) + 1:
                text = "".join(part + stored_text for part, stored_text
                               in zip(parts, stored)) + parts[-1]
            else:  # a string of the answer looked like the placeholder: decode them all
                text = _dumps(value, default=lambda item: json.loads(item.text))
        return cls(text)


def _dumps(value, default) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)

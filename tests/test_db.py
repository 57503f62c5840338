"""browserfarm.db helpers, on SQLite and PostgreSQL."""
import pytest

from browserfarm.db import Lookup
from browserfarm.models import Account, Worker
from browserfarm.services.accounts import create_account


def test_a_lookup_answers_what_the_orm_answers(farm):
    by_username = Lookup(lambda: Account.select().where(Account.v5_username == ""))
    worker_of = Lookup(lambda: Worker.select().where(Worker.id == 0, Worker.account == 0))
    with farm.db.connection_context():
        mine = create_account(farm, "mine").account
        other = create_account(farm, "other").account
        worker = Worker.create(account=mine.id, os="Linux", os_version="bookworm",
                               browser="firefox", browser_version="128.0", backend="firefox",
                               url="http://example.test/", session_id="s",
                               handle={"pid": 7, "keeper": "http://127.0.0.1:1"})
        for _ in range(2):  # built once, then reused
            found = by_username.first(mine.v5_username)
            assert (found.id, found.v5_key_hash) == (mine.id, mine.v5_key_hash)
            row = worker_of.first(worker.id, mine.id)
            assert row.handle == {"pid": 7, "keeper": "http://127.0.0.1:1"}  # JSON, decoded
            assert row.created_at == Worker.get_by_id(worker.id).created_at  # a datetime
        assert worker_of.first(worker.id, other.id) is None  # scoped to the account
        assert by_username.first("nobody") is None
        with pytest.raises(TypeError, match="takes 2 values"):
            worker_of.first(worker.id)

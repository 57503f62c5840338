"""The recycle bin: delete, list, restore, delete for good, purge after retention."""
from datetime import timedelta

from browserfarm.models import Window, utcnow
from browserfarm.services.windows import purge_recycle_bin
from tests.conftest import in_db


def make(owner, n):
    return [owner("/browser/update", {"name": f"w{i}"}).data for i in range(n)]


def test_delete_moves_to_the_recycle_bin_and_restore_brings_back(owner):
    a, b, c = make(owner, 3)
    assert owner("/browser/delete", {"id": a["id"]}).data["deleted"] == 1
    assert owner("/browser/delete", {"uuid": b["uuid"]}).code == 0
    assert owner("/browser/delete", {"ids": [c["id"]]}).code == 0
    assert owner("/browser/list").data["totalNum"] == 0
    binned = owner("/browser/recycle/list").data
    assert binned["totalNum"] == 3 and all(w["isDelete"] for w in binned["list"])
    assert owner("/browser/detail", {"id": a["id"]}).data["isDelete"] is True
    # A deleted window can't be edited until restored.
    assert owner("/browser/update", {"id": a["id"], "name": "x"}).code == 404
    assert owner("/browser/recycle/restore", {"ids": [a["id"], b["uuid"]]}).data[
        "restored"] == 2
    assert {w["id"] for w in owner("/browser/list").data["list"]} == {a["id"], b["id"]}


def test_delete_by_browser_id_alias_and_delete_ids(owner):
    a, b = make(owner, 2)
    assert owner("/browser/delete", {"browserId": str(a["id"])}).code == 0
    assert owner("/browser/delete/ids", {"ids": [b["id"]]}).code == 0
    assert owner("/browser/list").data["totalNum"] == 0


def test_delete_needs_an_id(owner):
    assert owner("/browser/delete", {}).code == 211


def test_permanent_delete_only_from_the_bin(owner):
    a, b = make(owner, 2)
    live = owner("/browser/recycle/delete", {"ids": [a["id"]]})
    assert live.code == 404  # not in the bin
    owner("/browser/delete", {"id": a["id"]})
    assert owner("/browser/recycle/delete", {"ids": [a["id"]]}).data["deleted"] == 1
    assert owner("/browser/detail", {"id": a["id"]}).code == 404
    assert owner("/browser/recycle/list").data["totalNum"] == 0


def test_restoring_a_live_or_foreign_window_is_404(owner, stranger):
    a, = make(owner, 1)
    theirs = stranger("/browser/update", {}).data
    stranger("/browser/delete", {"id": theirs["id"]})
    assert owner("/browser/recycle/restore", {"ids": [a["id"]]}).code == 404
    assert owner("/browser/recycle/restore", {"ids": [theirs["id"]]}).code == 404
    assert owner("/browser/recycle/list").data["totalNum"] == 0


def test_windows_past_retention_are_purged(farm, owner):
    old, recent = make(owner, 2)
    owner("/browser/delete/ids", {"ids": [old["id"], recent["id"]]})
    retention = farm.settings.recycle_retention_days
    in_db(farm, lambda: Window.update(deleted_at=utcnow() - timedelta(days=retention + 1))
          .where(Window.id == old["id"]).execute())
    listed = owner("/browser/recycle/list").data
    assert [w["id"] for w in listed["list"]] == [recent["id"]]
    assert owner("/browser/recycle/restore", {"ids": [old["id"]]}).code == 404
    assert in_db(farm, lambda: purge_recycle_bin(farm)) == 0  # already gone


def test_recycle_permissions(owner, token_with):
    a, = make(owner, 1)
    owner("/browser/delete", {"id": a["id"]})
    member = token_with(role="member")
    assert member("/browser/recycle/list").code == 0
    assert member("/browser/recycle/delete", {"ids": [a["id"]]}).code == 403
    assert member("/browser/recycle/restore", {"ids": [a["id"]]}).code == 0
    reader = token_with(role="read-only")
    assert reader("/browser/delete", {"id": a["id"]}).code == 403

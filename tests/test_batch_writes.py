"""What a batch writes: each window row rewritten once, and only the tag pairs that
change (``make bench``'s batch_statements measures the time; docs/benchmarks.md)."""
import logging

from browserfarm.models import WindowTag
from tests.conftest import in_db


def create(caller, **fields):
    answer = caller("/browser/update", fields)
    assert answer.code == 0, answer.body
    return answer.data


def test_a_partial_update_rewrites_each_window_row_once(owner, caplog):
    """Fingerprint and config merges and the plain fields go in one UPDATE: each
    UPDATE rewrites every row it names, whatever columns it sets."""
    tag = owner("/tag/add", {"name": "t"}).data["id"]
    a = create(owner, browserFingerPrint={"os": "Win32"}, config={"keep": 1})
    b = create(owner, browserFingerPrint={"os": "MacIntel"})
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        answer = owner("/browser/update/partial", {
            "ids": [a["id"], b["uuid"]], "remark": "batch", "tagIds": [tag], "muteAudio": True,
            "browserFingerPrint": {"canvas": "1"}, "config": {"added": 2}})
    assert answer.code == 0 and answer.data == {"ids": [a["id"], b["id"]], "updated": 2}
    updates = [r for r in caplog.records
               if r.name == "peewee" and str(r.msg[0]).startswith('UPDATE "window"')]
    assert len(updates) == 1, [r.msg[0] for r in updates]
    a2, b2 = (owner("/browser/detail", {"id": w["id"]}).data for w in (a, b))
    assert a2["browserFingerPrint"] == {**a["browserFingerPrint"], "canvas": "1"}
    assert b2["browserFingerPrint"] == {**b["browserFingerPrint"], "canvas": "1"}
    assert a2["config"] == {"keep": 1, "added": 2} and b2["config"] == {"added": 2}
    assert a2["remark"] == b2["remark"] == "batch" and a2["muteAudio"] is True
    assert a2["updatedTime"] > a["updatedTime"] and a2["tagIds"] == b2["tagIds"] == [tag]


def test_tags_a_window_keeps_are_left_as_they_are(farm, owner):
    t1, t2, t3 = (owner("/tag/add", {"name": n}).data["id"] for n in ("a", "b", "c"))
    a = create(owner, tagIds=[t1, t2])
    b = create(owner, tagIds=[t3])

    def pairs():
        return in_db(farm, lambda: {(p.window_id, p.tag_id): p.id for p in WindowTag.select()})

    before = pairs()
    assert owner("/browser/update/partial", {"ids": [a["id"], b["id"]],
                                             "tagIds": [t3, t2]}).code == 0
    after = pairs()
    assert set(after) == {(a["id"], t2), (a["id"], t3), (b["id"], t2), (b["id"], t3)}
    # the pairs kept are the same rows: nothing was deleted and added again
    assert after[(a["id"], t2)] == before[(a["id"], t2)]
    assert after[(b["id"], t3)] == before[(b["id"], t3)]
    for window in (a, b):
        shown = owner("/browser/detail", {"id": window["id"]}).data
        assert shown["tagIds"] == [t2, t3] and [t["name"] for t in shown["tags"]] == ["b", "c"]
    # the same tags again write nothing; none clears them
    assert owner("/browser/update/partial", {"ids": [a["id"]], "tagIds": [t2, t3]}).code == 0
    assert pairs() == after
    assert owner("/browser/update/partial", {"ids": [a["id"]], "tagIds": []}).code == 0
    assert owner("/browser/detail", {"id": a["id"]}).data["tagIds"] == []
    assert owner("/browser/detail", {"id": b["id"]}).data["tagIds"] == [t2, t3]

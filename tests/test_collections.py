"""Groups and tags: resources of their own, scoped to the account."""
import pytest


@pytest.mark.parametrize("kind, name_field, extra", [
    ("group", "groupName", {"sortNum": 3, "remark": "r"}),
    ("tag", "name", {"color": "#ff0000"}),
])
def test_create_list_rename_delete(owner, kind, name_field, extra):
    made = owner(f"/{kind}/add", {name_field: "first", **extra})
    assert made.code == 0 and made.data[name_field] == "first"
    for key, value in extra.items():
        assert made.data[key] == value
    owner(f"/{kind}/add", {name_field: "second"})
    listed = owner(f"/{kind}/list", {"page": 0, "pageSize": 10}).data
    assert listed["totalNum"] == 2
    assert {item[name_field] for item in listed["list"]} == {"first", "second"}
    renamed = owner(f"/{kind}/edit", {"id": made.data["id"], name_field: "renamed"})
    assert renamed.data[name_field] == "renamed"
    assert owner(f"/{kind}/detail", {"id": made.data["id"]}).data[name_field] == "renamed"
    assert owner(f"/{kind}/delete", {"id": made.data["id"]}).code == 0
    assert owner(f"/{kind}/detail", {"id": made.data["id"]}).code == 404


@pytest.mark.parametrize("kind, name_field", [("group", "groupName"), ("tag", "name")])
def test_names_are_unique_within_an_account_only(owner, stranger, kind, name_field):
    assert owner(f"/{kind}/add", {name_field: "same"}).code == 0
    duplicate = owner(f"/{kind}/add", {name_field: "same"})
    assert duplicate.code == 211 and duplicate.data["field"] == name_field
    assert stranger(f"/{kind}/add", {name_field: "same"}).code == 0
    other = owner(f"/{kind}/add", {name_field: "other"}).data["id"]
    assert owner(f"/{kind}/edit", {"id": other, name_field: "same"}).code == 211


@pytest.mark.parametrize("kind, name_field", [("group", "groupName"), ("tag", "name")])
def test_foreign_and_unknown_ids_are_404(owner, stranger, kind, name_field):
    theirs = stranger(f"/{kind}/add", {name_field: "x"}).data["id"]
    for path, body in [("detail", {}), ("edit", {name_field: "y"}), ("delete", {})]:
        for ref in (theirs, 999999):
            answer = owner(f"/{kind}/{path}", {"id": ref, **body})
            assert (answer.status, answer.code) == (404, 404)
    assert stranger(f"/{kind}/detail", {"id": theirs}).data[name_field] == "x"
    assert owner(f"/{kind}/list").data["totalNum"] == 0


@pytest.mark.parametrize("kind, body, field", [
    ("group", {}, "groupName"), ("group", {"groupName": ""}, "groupName"),
    ("group", {"groupName": "x" * 101}, "groupName"), ("group", {"groupName": 3}, "groupName"),
    ("group", {"groupName": "g", "sortNum": "a"}, "sortNum"),
    ("tag", {}, "name"), ("tag", {"name": "t", "color": "red"}, "color"),
    ("tag", {"name": "t", "extra": 1}, "extra"),
])
def test_bad_input_is_211(owner, kind, body, field):
    answer = owner(f"/{kind}/add", body)
    assert (answer.status, answer.code) == (400, 211) and answer.data["field"] == field


def test_deleting_a_group_ungroups_its_windows(owner):
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    window = owner("/browser/update", {"groupId": group}).data
    assert owner("/group/detail", {"id": group}).data["windowCount"] == 1
    assert owner("/group/delete", {"id": group}).data == {"id": group, "windows": 1}
    assert owner("/browser/detail", {"id": window["id"]}).data["groupId"] == 0


def test_deleting_a_tag_takes_it_off_windows(owner):
    keep, drop = (owner("/tag/add", {"name": n}).data["id"] for n in ("keep", "drop"))
    window = owner("/browser/update", {"tagIds": [keep, drop]}).data
    assert owner("/tag/detail", {"id": drop}).data["windowCount"] == 1
    owner("/tag/delete", {"id": drop})
    assert owner("/browser/detail", {"id": window["id"]}).data["tagIds"] == [keep]


def test_managing_needs_permission_and_reading_does_not(owner, token_with):
    reader = token_with(role="read-only")
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    assert reader("/group/list").code == 0 and reader("/tag/list").code == 0
    for path, body in [("/group/add", {"groupName": "x"}), ("/group/edit", {"id": group}),
                       ("/group/delete", {"id": group}), ("/tag/add", {"name": "x"})]:
        answer = reader(path, body)
        assert (answer.status, answer.code) == (403, 403), path
    nobody = token_with("browser:list")
    assert nobody("/group/list").code == 403

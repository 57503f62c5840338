"""The Browser Window cloud API, as a script written for the spec uses it."""
import json
import logging
import uuid

import pytest

from browserfarm.models import Window
from tests.conftest import in_db

SOCKS = {"proxyMethod": 2, "proxyType": "socks5", "host": "1.2.3.4", "port": 1020,
         "proxyUserName": "abc", "proxyPassword": "def"}


def create(caller, **fields):
    answer = caller("/browser/update", fields)
    assert answer.code == 0, answer.body
    return answer.data


# ----- create and edit --------------------------------------------------------------

def test_create_with_the_spec_example_returns_the_stored_window(owner):
    group = owner("/group/add", {"groupName": "shop"}).data
    tags = [owner("/tag/add", {"name": n}).data["id"] for n in ("a", "b")]
    answer = owner("/browser/update", {
        "name": "windows browser", "groupId": group["id"], "tagIds": tags,
        "remark": "Created via API", **SOCKS,
        "browserFingerPrint": {"coreVersion": "118", "ostype": "PC", "os": "Win32"}})
    assert answer.status == 200 and answer.code == 0 and answer.msg == "success"
    window = answer.data
    assert window["name"] == "windows browser"
    assert window["groupId"] == group["id"] and window["groupName"] == "shop"
    assert window["tagIds"] == tags and [t["name"] for t in window["tags"]] == ["a", "b"]
    # Kept as given; the rest is drawn (tests/test_fingerprint_defaults.py).
    assert window["browserFingerPrint"].items() >= {"coreVersion": "118", "ostype": "PC",
                                                    "os": "Win32"}.items()
    assert {k: window[k] for k in SOCKS} == SOCKS
    assert uuid.UUID(window["uuid"]) and window["isDelete"] is False


def test_create_without_fields_gets_a_default_name_and_direct_proxy(owner):
    first, second = create(owner), create(owner)
    assert (first["name"], second["name"]) == ("Window 1", "Window 2")
    assert first["proxyType"] == "direct" and first["proxyMethod"] == 2
    assert first["browserFingerPrint"]["userAgent"]  # drawn: test_fingerprint_defaults.py


def test_bitbrowser_window_fields_are_kept(owner):
    cookies = [{"name": "sid", "value": "1", "domain": ".example.com", "path": "/"}]
    window = create(owner, syncCookies=False, syncTabs=True, syncLocalStorage=True,
                    syncIndexedDb=True, url="https://example.com", cookie=cookies,
                    config={"any": {"nested": [1, 2]}})
    detail = owner("/browser/detail", {"id": window["id"]}).data
    assert detail["syncCookies"] is False and detail["syncTabs"] is True
    assert detail["syncLocalStorage"] is True and detail["syncIndexedDb"] is True
    assert detail["url"] == "https://example.com" and detail["cookie"] == cookies
    assert detail["config"] == {"any": {"nested": [1, 2]}}


def test_cookie_as_a_json_string_is_accepted(owner):
    window = create(owner, cookie='[{"name": "a", "value": "b"}]')
    assert window["cookie"] == [{"name": "a", "value": "b"}]


@pytest.mark.parametrize("alias", ["id", "browserId", "uuid"])
def test_edit_by_each_alias_changes_only_what_is_sent(owner, alias):
    window = create(owner, name="before", remark="keep me", **SOCKS)
    ref = window["uuid"] if alias == "uuid" else window["id"]
    answer = owner("/browser/update", {alias: ref, "name": "after"})
    assert answer.code == 0
    assert answer.data["name"] == "after" and answer.data["remark"] == "keep me"
    assert answer.data["host"] == "1.2.3.4" and answer.data["proxyPassword"] == "def"


def test_numeric_string_ids_work_like_numbers(owner):
    window = create(owner)
    assert owner("/browser/detail", {"id": str(window["id"])}).data["uuid"] == window["uuid"]
    assert owner("/browser/update", {"browserId": str(window["id"]),
                                     "remark": "x"}).data["remark"] == "x"


def test_edit_of_proxy_host_keeps_the_rest_of_the_proxy(owner):
    window = create(owner, **SOCKS)
    edited = owner("/browser/update", {"id": window["id"], "host": "5.6.7.8"}).data
    assert edited["host"] == "5.6.7.8" and edited["port"] == 1020
    assert edited["proxyUserName"] == "abc" and edited["proxyPassword"] == "def"


def test_noproxy_from_bitbrowser_scripts_means_direct(owner):
    assert create(owner, proxyType="noproxy")["proxyType"] == "direct"


def test_edit_replaces_tags_and_ungroups_with_zero(owner):
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    t1, t2 = (owner("/tag/add", {"name": n}).data["id"] for n in ("t1", "t2"))
    window = create(owner, groupId=group, tagIds=[t1])
    edited = owner("/browser/update", {"id": window["id"], "groupId": 0,
                                       "tagIds": [t2]}).data
    assert edited["groupId"] == 0 and edited["tagIds"] == [t2]


# ----- bad input --------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"name": 5}, "name"),
    ({"port": "abc", "proxyType": "socks5", "host": "h"}, "port"),
    ({"port": 70000, "proxyType": "socks5", "host": "h"}, "port"),
    ({"port": True, "proxyType": "socks5", "host": "h"}, "port"),
    ({"proxyMethod": 9}, "proxyMethod"),
    ({"proxyType": "carrier-pigeon", "host": "h", "port": 1}, "proxyType"),
    ({"proxyType": "socks5"}, "host"),
    ({"proxyType": "http", "host": "h"}, "port"),
    ({"proxyType": "ssh", "host": "h", "port": 22}, "proxyUserName"),
    ({"proxyMethod": 3}, "dynamicIpUrl"),
    ({"proxyMethod": 3, "dynamicIpUrl": "ftp://x"}, "dynamicIpUrl"),
    ({"proxyMethod": 4}, "proxyId"),
    ({"ipCheckService": "nope"}, "ipCheckService"),
    ({"groupId": 999999}, "groupId"),
    ({"groupId": "abc"}, "groupId"),
    ({"tagIds": [999999]}, "tagIds"),
    ({"tagIds": "1,2"}, "tagIds"),
    ({"browserFingerPrint": "x"}, "browserFingerPrint"),
    ({"browserFingerPrint": {"coreProduct": "netscape"}}, "browserFingerPrint.coreProduct"),
    ({"browserFingerPrint": {"timeZone": "Mars/Olympus"}}, "browserFingerPrint.timeZone"),
    ({"browserFingerPrint": {"webRTC": "7"}}, "browserFingerPrint.webRTC"),
    ({"browserFingerPrint": {"resolution": "big"}}, "browserFingerPrint.resolution"),
    ({"cookie": "not json"}, "cookie"),
    ({"cookie": [{"value": "no name"}]}, "cookie"),
    ({"unknownField": 1}, "unknownField"),
    ({"id": "not-an-id"}, "id"),
])
def test_bad_fields_get_211_naming_the_field_and_nothing_is_stored(farm, owner, body, field):
    answer = owner("/browser/update", body)
    assert (answer.status, answer.code) == (400, 211), answer.body
    assert answer.data["field"] == field
    assert field.split(".")[-1] in answer.msg
    assert in_db(farm, lambda: Window.select().count()) == 0


def test_config_that_is_not_an_object_gets_the_spec_message(owner):
    for config in ([1], "x", 3, None):
        answer = owner("/browser/update", {"config": config})
        assert answer.body == {"code": 211, "msg": "Configuration must be a JSON object",
                               "data": {"field": "config", "errors": {
                                   "config": "Configuration must be a JSON object"}}}


@pytest.mark.parametrize("raw, msg", [
    (b"{bad json", "Request body is not valid JSON"),
    (b"[1, 2]", "Request body must be a JSON object"),
    (b'"text"', "Request body must be a JSON object"),
    (b"\xff\xfe", "Request body is not valid JSON"),
])
def test_garbage_bodies_get_211(owner, raw, msg):
    answer = owner("/browser/update", raw=raw, headers={"Content-Type": "application/json"})
    assert (answer.status, answer.code, answer.msg) == (400, 211, msg)


def nested(depth):
    value = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize("body, field", [
    ({"config": nested(40)}, "config"),
    ({"browserFingerPrint": {"extra": nested(40)}}, "browserFingerPrint"),
    ({"cookie": [{"name": "a", "value": nested(40)}]}, "cookie"),
])
def test_json_nested_too_deeply_is_refused(owner, body, field):
    answer = owner("/browser/update", body)
    assert answer.code == 211 and answer.data["field"] == field and "deeper" in answer.msg
    assert owner("/browser/update", {"config": nested(30)}).code == 0


def test_a_body_nested_beyond_the_parser_is_211_not_500(owner):
    answer = owner("/browser/update", raw=b"[" * 100000 + b"]" * 100000,
                   headers={"Content-Type": "application/json"})
    assert (answer.status, answer.code) == (400, 211)


def test_json_without_content_type_is_still_read(owner):
    answer = owner("/browser/update", raw=b'{"name": "curl -d"}',
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.code == 0 and answer.data["name"] == "curl -d"


def test_unknown_window_is_404_and_foreign_window_is_404(owner, stranger):
    theirs = create(stranger)
    for ref in ({"id": 424242}, {"uuid": str(uuid.uuid4())}, {"id": theirs["id"]},
                {"uuid": theirs["uuid"]}):
        answer = owner("/browser/detail", ref)
        assert (answer.status, answer.code) == (404, 404), ref
        assert owner("/browser/update", {**ref, "name": "mine now"}).code == 404
    assert stranger("/browser/detail", {"id": theirs["id"]}).data["name"] == theirs["name"]


def test_detail_needs_one_of_the_aliases(owner):
    answer = owner("/browser/detail", {})
    assert answer.code == 211 and "id" in answer.msg


@pytest.mark.parametrize("path, body, answer", [
    ("/browser/detail", {}, ("id", "id: one of id, browserId or uuid is required")),
    ("/browser/status", {"status": "closed"},
     ("id", "id: one of id, browserId or uuid is required")),
    ("/browser/delete", {}, ("id", "id: one of id, browserId, uuid or ids is required")),
    ("/browser/delete", {"id": 1, "ids": [1]},
     ("ids", "ids: give either ids or one of id, browserId, uuid")),
])
def test_which_window_rules_answer_as_they_always_did(owner, path, body, answer):
    field, msg = answer
    got = owner(path, body)
    assert (got.status, got.body) == (400, {"code": 211, "msg": msg, "data": {"field": field}})


def test_the_document_states_which_window_a_request_must_name(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    one_of_the_aliases = {"anyOf": [{"required": ["id"]}, {"required": ["browserId"]},
                                    {"required": ["uuid"]}]}
    assert schemas["WindowRefArgs"]["anyOf"] == one_of_the_aliases["anyOf"]
    assert schemas["DeleteArgs"]["oneOf"] == [one_of_the_aliases, {"required": ["ids"]}]
    assert "anyOf" not in schemas["WindowUpdateArgs"]  # no id: a new window


def test_aliases_naming_different_windows_are_refused(owner):
    a, b = create(owner), create(owner)
    answer = owner("/browser/detail", {"id": a["id"], "uuid": b["uuid"]})
    assert answer.code == 211


# ----- list -------------------------------------------------------------------------

def test_list_pages_from_zero_with_total(owner):
    for i in range(25):
        create(owner, name=f"w{i:02}")
    first = owner("/browser/list", {"page": 0, "pageSize": 10}).data
    last = owner("/browser/list", {"page": 2, "pageSize": 10}).data
    assert first["totalNum"] == 25 and len(first["list"]) == 10 and len(last["list"]) == 5
    assert first["list"][0]["name"] == "w24"  # newest first by default
    beyond = owner("/browser/list", {"page": 9, "pageSize": 10}).data
    assert beyond["list"] == [] and beyond["totalNum"] == 25


def test_list_filters_and_sorts(owner):
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    tag = owner("/tag/add", {"name": "t"}).data["id"]
    create(owner, name="Alpha shop", remark="red", groupId=group, tagIds=[tag])
    create(owner, name="beta", remark="Shop blue")
    create(owner, name="gamma", remark="green")

    def names(**query):
        return [w["name"] for w in owner("/browser/list", query).data["list"]]

    assert names(keyword="SHOP", sortProperties="name", sortDirection="asc") == [
        "Alpha shop", "beta"]
    assert names(name="alp") == ["Alpha shop"]
    assert names(remark="gree") == ["gamma"]
    assert names(groupId=group) == ["Alpha shop"]
    assert names(groupId=str(group)) == ["Alpha shop"]
    assert names(tagIds=[tag]) == ["Alpha shop"]
    assert names(sortProperties="name", sortDirection="desc") == [
        "gamma", "beta", "Alpha shop"]
    assert names(keyword="100%") == []  # wildcards are text, not patterns


def test_list_only_shows_the_callers_account(owner, stranger):
    create(owner, name="mine")
    create(stranger, name="theirs")
    assert [w["name"] for w in owner("/browser/list").data["list"]] == ["mine"]


@pytest.mark.parametrize("query, field", [
    ({"page": -1}, "page"), ({"pageSize": 0}, "pageSize"), ({"pageSize": 101}, "pageSize"),
    ({"page": "x"}, "page"), ({"sortProperties": "password"}, "sortProperties"),
    ({"sortDirection": "up"}, "sortDirection"), ({"keyword": 5}, "keyword"),
])
def test_bad_list_queries_get_211(owner, query, field):
    answer = owner("/browser/list", query)
    assert answer.code == 211 and answer.data["field"] == field


# ----- batches ----------------------------------------------------------------------

def test_partial_update_of_many_windows(owner):
    tag = owner("/tag/add", {"name": "t"}).data["id"]
    a = create(owner, browserFingerPrint={"os": "Win32", "coreVersion": "118"},
               config={"keep": 1})
    b = create(owner, browserFingerPrint={"os": "MacIntel"})
    answer = owner("/browser/update/partial", {
        "ids": [a["id"], b["uuid"]], "remark": "batch", "tagIds": [tag],
        "browserFingerPrint": {"coreVersion": "128"}, "config": {"added": 2}})
    assert answer.code == 0 and answer.data["updated"] == 2
    a2 = owner("/browser/detail", {"id": a["id"]}).data
    b2 = owner("/browser/detail", {"id": b["id"]}).data
    assert a2["browserFingerPrint"] == {**a["browserFingerPrint"], "coreVersion": "128"}
    assert b2["browserFingerPrint"] == {**b["browserFingerPrint"], "coreVersion": "128"}
    assert a2["config"] == {"keep": 1, "added": 2}
    assert a2["remark"] == b2["remark"] == "batch" and a2["tagIds"] == [tag]


def test_a_batch_with_one_unknown_id_changes_nothing(owner, stranger):
    mine = create(owner, remark="old")
    theirs = create(stranger, remark="theirs")
    for endpoint, extra in [("/browser/remark/update", {"remark": "new"}),
                            ("/browser/update/partial", {"remark": "new"}),
                            ("/browser/group/update", {"groupId": 0}),
                            ("/browser/proxy/update", {"proxyMethod": 2}),
                            ("/browser/delete/ids", {})]:
        answer = owner(endpoint, {"ids": [mine["id"], theirs["id"]], **extra})
        assert (answer.status, answer.code) == (404, 404), endpoint
        assert str(theirs["id"]) in answer.msg
    assert owner("/browser/detail", {"id": mine["id"]}).data["remark"] == "old"
    assert stranger("/browser/detail", {"id": theirs["id"]}).data["remark"] == "theirs"


def test_a_batch_failing_validation_half_way_writes_nothing(owner):
    a, b = create(owner, remark="a"), create(owner, remark="b")
    answer = owner("/browser/update/partial", {"ids": [a["id"], b["id"]], "remark": "new",
                                               "tagIds": [987654]})
    assert answer.code == 211
    assert owner("/browser/detail", {"id": a["id"]}).data["remark"] == "a"


@pytest.mark.parametrize("ids", [[], "1,2", [True], ["x"], [0], list(range(1, 1002))])
def test_bad_id_arrays_get_211(owner, ids):
    answer = owner("/browser/delete/ids", {"ids": ids})
    assert answer.code == 211 and answer.data["field"].startswith("ids")


def test_group_and_remark_batch_updates(owner):
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    a, b = create(owner), create(owner)
    assert owner("/browser/group/update", {"ids": [a["id"], b["id"]],
                                           "groupId": group}).code == 0
    assert owner("/browser/remark/update", {"ids": [a["id"]], "remark": "r"}).code == 0
    listed = {w["id"]: w for w in owner("/browser/list").data["list"]}
    assert listed[a["id"]]["groupId"] == listed[b["id"]]["groupId"] == group
    assert listed[a["id"]]["remark"] == "r" and listed[b["id"]]["remark"] == ""
    assert owner("/browser/group/update", {"ids": [a["id"]], "groupId": 777}).code == 211
    assert owner("/browser/group/update", {"ids": [a["id"]]}).data["field"] == "groupId"


def test_proxy_update_sets_the_whole_proxy_and_resets_what_is_not_given(owner):
    a = create(owner, **SOCKS)
    b = create(owner)
    answer = owner("/browser/proxy/update", {
        "ids": [a["id"], b["id"]], "ipCheckService": "ip-api", "proxyMethod": 2,
        "proxyType": "http", "host": "127.0.0.1", "port": "8080",
        "enableSocks5Udp": True})
    assert answer.code == 0
    for window in (owner("/browser/detail", {"id": w["id"]}).data for w in (a, b)):
        assert (window["proxyType"], window["host"], window["port"]) == (
            "http", "127.0.0.1", 8080)
        assert window["proxyUserName"] == "" and window["proxyPassword"] == ""
        assert window["enableSocks5Udp"] is True


def test_proxy_update_to_an_extracted_proxy(owner):
    a = create(owner)
    answer = owner("/browser/proxy/update", {
        "ids": [a["id"]], "proxyMethod": "3", "proxyType": "socks5",
        "dynamicIpUrl": "http://extract.example/get", "dynamicIpChannel": "custom",
        "isDynamicIpChangeIp": True, "refreshProxyUrl": "https://extract.example/r"})
    assert answer.code == 0
    window = owner("/browser/detail", {"id": a["id"]}).data
    assert window["proxyMethod"] == 3 and window["isDynamicIpChangeIp"] is True
    assert window["dynamicIpUrl"] == "http://extract.example/get"


def test_proxy_update_needs_proxy_method(owner):
    a = create(owner)
    answer = owner("/browser/proxy/update", {"ids": [a["id"]], "proxyType": "http"})
    assert answer.code == 211 and answer.data["field"] == "proxyMethod"


def test_batch_of_1000_ids_uses_a_fixed_number_of_statements(farm, owner, caplog):
    """Counted from peewee's query log: the same count for 10 ids and for 1,000."""
    tag = owner("/tag/add", {"name": "t"}).data["id"]
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    with farm.db.atomic():
        rows = [{"account": owner.account.id, "uuid": str(uuid.uuid4()), "seq": i,
                 "name": f"w{i}"} for i in range(1, 1001)]
        for chunk in range(0, 1000, 200):
            Window.insert_many(rows[chunk:chunk + 200]).execute()
    ids = in_db(farm, lambda: [w.id for w in Window.select(Window.id).order_by(Window.id)])

    def statements(endpoint, body):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            assert owner(endpoint, body).code == 0
        return sum(1 for r in caplog.records if r.name == "peewee")

    for endpoint, extra in [("/browser/update/partial", {"remark": "x", "tagIds": [tag],
                                                         "browserFingerPrint": {"canvas": "1"}}),
                            ("/browser/group/update", {"groupId": group}),
                            ("/browser/remark/update", {"remark": "y"}),
                            ("/browser/proxy/update", {"proxyMethod": 2}),
                            ("/browser/delete/ids", {})]:
        small = statements(endpoint, {"ids": ids[:10], **extra})
        if endpoint == "/browser/delete/ids":
            owner("/browser/recycle/restore", {"ids": ids[:10]})
        large = statements(endpoint, {"ids": ids, **extra})
        assert small == large, endpoint
        assert large <= 12, endpoint


# ----- permissions ------------------------------------------------------------------

def test_each_endpoint_needs_its_permission(owner, token_with):
    window = create(owner)
    other = create(owner)
    reader = token_with("browser:list")
    single = token_with("browser:update:single")
    cases = [
        (reader, "/browser/update", {"name": "x"}, "browser:create:single"),
        (reader, "/browser/update", {"id": window["id"], "name": "x"}, "browser:update:single"),
        (single, "/browser/update/partial", {"ids": [window["id"], other["id"]],
                                             "remark": "x"}, "browser:update:batch"),
        (single, "/browser/group/update", {"ids": [window["id"], other["id"]],
                                           "groupId": 0}, "browser:update:batch"),
        (single, "/browser/remark/update", {"ids": [window["id"], other["id"]],
                                            "remark": "x"}, "browser:update:batch"),
        (single, "/browser/proxy/update", {"ids": [window["id"], other["id"]],
                                           "proxyMethod": 2}, "browser:update:batch"),
        (single, "/browser/detail", {"id": window["id"]}, "browser:list"),
        (single, "/browser/list", {}, "browser:list"),
        (reader, "/browser/delete", {"id": window["id"]}, "browser:delete:recycle"),
        (reader, "/browser/delete/ids", {"ids": [window["id"]]}, "browser:delete:recycle"),
    ]
    for caller, path, body, permission in cases:
        answer = caller(path, body)
        assert (answer.status, answer.code) == (403, 403), path
        assert permission in answer.msg and answer.data["permission"] == permission
    # ... and nothing changed.
    assert owner("/browser/detail", {"id": window["id"]}).data["name"] == window["name"]


def test_single_permission_is_enough_for_one_id(owner, token_with):
    window = create(owner)
    single = token_with("browser:update:single")
    for path, body in [("/browser/update/partial", {"remark": "x"}),
                       ("/browser/group/update", {"groupId": 0}),
                       ("/browser/remark/update", {"remark": "y"}),
                       ("/browser/proxy/update", {"proxyMethod": 2})]:
        assert single(path, {"ids": [window["id"]], **body}).code == 0, path


def test_read_only_role_reads_but_does_not_write_or_see_passwords(owner, token_with):
    window = create(owner, **SOCKS)
    reader = token_with(role="read-only")
    detail = reader("/browser/detail", {"id": window["id"]}).data
    assert detail["proxyUserName"] == "abc" and detail["proxyPassword"] == ""
    assert reader("/browser/list").data["list"][0]["proxyPassword"] == ""
    assert token_with(role="member")("/browser/detail", {"id": window["id"]}).data[
        "proxyPassword"] == "def"
    assert reader("/browser/update", {"name": "x"}).code == 403


def test_cookies_are_shown_only_to_tokens_that_may_reveal_them(owner, token_with):
    cookies = [{"name": "sid", "value": "secret-session", "domain": ".example.com"}]
    window = create(owner, cookie=cookies)
    reader = token_with(role="read-only")
    # Sees proxy passwords as the owner does, but not cookies: its own cache entries.
    proxies_only = token_with("browser:list", "browser:proxy:reveal")
    for query in ({}, {"pageSize": 5}):
        # The owner asks first, so a revealing answer sits in the cache, then the
        # others ask the same query (cached) and a new one (cold).
        assert owner("/browser/list", query).data["list"][0]["cookie"] == cookies
        for caller in (reader, proxies_only):
            assert caller("/browser/list", query).data["list"][0]["cookie"] is None
            assert "secret-session" not in str(caller("/browser/list", query).body)
            assert caller("/browser/detail", {"id": window["id"]}).data["cookie"] is None
    assert "secret-session" not in str(reader("/browser/list", {"pageSize": 7}).body)
    assert owner("/browser/detail", {"id": window["id"]}).data["cookie"] == cookies
    assert token_with(role="member")("/browser/list").data["list"][0]["cookie"] == cookies
    assert token_with("browser:list", "browser:cookie:reveal")(
        "/browser/detail", {"id": window["id"]}).data["cookie"] == cookies


def test_list_answers_are_encoded_as_json_dumps_would(owner, client):
    """The list is encoded fast (orjson, stored JSON put in as it is), but its bytes
    are those of json.dumps (compact, not escaping non-ASCII), whatever the columns
    hold: floats, escapes, text a database's JSON merge rewrote."""
    odd = "caf\u00e9 \u2028 \U0001F600 \\u0000 \" \\ \x7f \x1f"
    window = create(owner, name=odd, remark=odd, cookie=[{"name": "a", "value": odd}],
                    browserFingerPrint={"lat": 1.5, "lng": 1e-7, "userAgent": odd},
                    config={"k": odd, "n": [1e16, -0.0, 12345678901234567890]})
    owner("/browser/update/partial", {"ids": [window["id"]],  # a merge (jsonb on PostgreSQL)
                                      "browserFingerPrint": {"webGLRender": odd}})
    create(owner, browserFingerPrint={"devicePixelRatio": 1.25}, config={"x": "\u00e9"})
    for query in ({}, {"sortProperties": "name", "sortDirection": "asc"}):
        raw = client.post("/browser/list", json=query,
                          headers={"Authorization": f"Bearer {owner.token}"}).get_data()
        assert raw == json.dumps(json.loads(raw), separators=(",", ":"),
                                 ensure_ascii=False).encode()
        assert json.loads(raw)["data"]["list"][-1 if query else 1]["name"] == odd


def test_the_same_id_twice_is_still_one_window(owner, token_with):
    window = create(owner)
    single = token_with("browser:update:single")
    answer = single("/browser/remark/update", {"ids": [window["id"], str(window["id"])],
                                               "remark": "r"})
    assert answer.code == 0 and answer.data == {"ids": [window["id"]], "updated": 1}


def test_batch_answers_keep_the_order_asked(owner):
    a, b, c = create(owner), create(owner), create(owner)
    answer = owner("/browser/remark/update", {"ids": [c["id"], a["uuid"], b["id"]],
                                              "remark": "r"})
    assert answer.data["ids"] == [c["id"], a["id"], b["id"]]


@pytest.mark.parametrize("path, body, field", [
    ("/browser/update", {"name": "x\u0000y"}, "name"),
    ("/browser/update", {"browserFingerPrint": {"userAgent": "a\u0000"}},
     "browserFingerPrint.userAgent"),
    ("/browser/list", {"keyword": "a\u0000"}, "keyword"),
    ("/group/add", {"groupName": "g\u0000"}, "groupName"),
    ("/tag/add", {"name": "t\u0000"}, "name"),
])
def test_nul_characters_are_refused_on_every_database(owner, path, body, field):
    answer = owner(path, body)  # sent as the JSON escape \\u0000
    assert (answer.status, answer.code) == (400, 211), answer.body
    assert answer.data["field"] == field and "NUL" in answer.msg


def test_delete_takes_ids_or_one_id_not_both(owner):
    a, b = create(owner), create(owner)
    answer = owner("/browser/delete", {"ids": [a["id"]], "id": b["id"]})
    assert answer.code == 211 and answer.data["field"] == "ids"
    assert owner("/browser/list").data["totalNum"] == 2


def test_password_is_not_returned_to_a_caller_who_cannot_read_windows(token_with):
    creator = token_with("browser:create:single")
    answer = creator("/browser/update", SOCKS)
    assert answer.code == 0 and answer.data["proxyPassword"] == ""


def test_lists_are_never_stale_after_any_write(owner):
    """Lists are cached per account revision: every write must show at once."""
    group = owner("/group/add", {"groupName": "g"}).data["id"]
    tag = owner("/tag/add", {"name": "t"}).data["id"]
    a = create(owner, groupId=group, tagIds=[tag])
    b = create(owner)

    def listed():
        return {w["id"]: w for w in owner("/browser/list", {"pageSize": 100}).data["list"]}

    writes = [
        ("/browser/update", {"id": a["id"], "name": "renamed"},
         lambda ws: ws[a["id"]]["name"] == "renamed"),
        ("/browser/update/partial", {"ids": [a["id"]], "browserFingerPrint": {"os": "iPhone"}},
         lambda ws: ws[a["id"]]["browserFingerPrint"]["os"] == "iPhone"),
        ("/browser/remark/update", {"ids": [b["id"]], "remark": "r"},
         lambda ws: ws[b["id"]]["remark"] == "r"),
        ("/browser/proxy/update", {"ids": [b["id"]], "proxyMethod": 2, "proxyType": "http",
                                   "host": "h", "port": 1},
         lambda ws: ws[b["id"]]["proxyType"] == "http"),
        ("/group/edit", {"id": group, "groupName": "g2"},
         lambda ws: ws[a["id"]]["groupName"] == "g2"),
        ("/tag/edit", {"id": tag, "name": "t2"},
         lambda ws: ws[a["id"]]["tags"][0]["name"] == "t2"),
        ("/tag/delete", {"id": tag}, lambda ws: ws[a["id"]]["tagIds"] == []),
        ("/browser/group/update", {"ids": [b["id"]], "groupId": group},
         lambda ws: ws[b["id"]]["groupId"] == group),
        ("/group/delete", {"id": group}, lambda ws: ws[b["id"]]["groupId"] == 0),
        ("/browser/delete", {"id": b["id"]}, lambda ws: b["id"] not in ws),
        ("/browser/recycle/restore", {"ids": [b["id"]]}, lambda ws: b["id"] in ws),
        ("/browser/update", {"name": "new"}, lambda ws: len(ws) == 3),
    ]
    for path, body, shows in writes:
        listed()  # warm the cache
        assert owner(path, body).code == 0, path
        assert shows(listed()), path


def test_a_write_through_one_process_shows_in_anothers_list(farm, owner):
    """Two API processes (two apps, each with its own cache) over one database."""
    import dataclasses

    from browserfarm.app import create_app
    from browserfarm.services.revisions import AnswerCache
    from tests.conftest import Caller
    # One database per process (models bind to one), each process its own cache.
    other_farm = dataclasses.replace(farm, answers=AnswerCache())
    other = Caller(create_app(farm=other_farm).test_client(), owner.token)
    window = create(owner, name="before")
    assert other("/browser/list").data["list"][0]["name"] == "before"
    owner("/browser/update", {"id": window["id"], "name": "after"})
    assert other("/browser/list").data["list"][0]["name"] == "after"


def test_concurrent_writes_all_succeed_with_distinct_numbers(owner):
    """Several callers at once (threads of one API process, as with a threaded or
    multi-worker server): no "database is locked", no duplicate window numbers."""
    import threading
    errors, numbers = [], []

    def writer():
        for _ in range(8):
            answer = owner("/browser/update", {"remark": "busy"})
            if answer.code != 0:
                errors.append(answer.body)
            else:
                numbers.append(answer.data["seq"])
                owner("/browser/remark/update", {"ids": [answer.data["id"]], "remark": "x"})

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(numbers) == list(range(1, 49))


def test_changing_an_extracted_window_forgets_its_old_proxy(farm, owner):
    window = create(owner, proxyMethod=3, dynamicIpUrl="http://old.example/get")
    in_db(farm, lambda: Window.update(extracted_proxy={"type": "socks5", "host": "1.1.1.1",
                                                       "port": 1}).where(
        Window.id == window["id"]).execute())
    owner("/browser/update", {"id": window["id"], "dynamicIpUrl": "http://new.example/get"})
    assert in_db(farm, lambda: Window.get_by_id(window["id"]).extracted_proxy) is None


def test_answers_carry_exactly_the_documented_fields(owner, app):
    """Answers are built by the service and described by the schema: they agree."""
    from browserfarm.api.windows import WindowSchema
    window = create(owner, **SOCKS)
    assert set(window) == set(WindowSchema().fields)
    assert set(owner("/browser/list").data["list"][0]) == set(WindowSchema().fields)

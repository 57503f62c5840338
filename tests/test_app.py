"""The envelope, its HTTP statuses, authentication, and the API's own documentation."""
import re

import pytest

from browserfarm.services.accounts import revoke_token
from tests.conftest import Caller, in_db

SPEC_PATHS = ["/browser/update", "/browser/update/partial", "/browser/detail",
              "/browser/list", "/browser/delete", "/browser/delete/ids",
              "/browser/group/update", "/browser/remark/update", "/browser/proxy/update"]


# The spec's codes (shared/spec/browser-window-api.txt, "Common Local API status codes"):
#   0 | Request successful
#   211 | Missing parameter or unsupported parameter combination
#   401 | Client not logged in, or invalid local access token
#   404 | API not found
#   500 | Local service execution failed
# It names no HTTP status: the README promises one per code ("Codes and HTTP statuses:
# `0` → 200, `211` (...) → 400, `401` → 401, `403` (...) → 403, `404` (...) → 404,
# `500` → 500"); 403, a token without the permission, is ours.
DOCUMENTED_STATUS = {0: 200, 211: 400, 401: 401, 403: 403, 404: 404, 500: 500}


def test_each_code_has_its_documented_http_status(owner, farm, client):
    """Written out from the spec and the README, not read from the implementation."""
    seen = {}
    answer = owner("/browser/list")
    seen[answer.code] = answer.status
    answer = owner("/browser/list", {"page": -1})
    seen[answer.code] = answer.status
    answer = Caller(client, None)("/browser/list")
    seen[answer.code] = answer.status
    answer = Caller(client, "bf_nope")("/browser/list")
    seen[answer.code] = answer.status
    reader = owner  # the owner has every permission; make a token without one:
    from browserfarm.services.accounts import create_token
    raw, _ = in_db(farm, lambda: create_token(farm, owner.account.id, "t", ["tag:list"]))
    answer = Caller(client, raw)("/browser/list")
    seen[answer.code] = answer.status
    answer = reader("/browser/detail", {"id": 99999})
    seen[answer.code] = answer.status
    # A real server-side failure: the table the query needs is gone.
    in_db(farm, lambda: farm.db.execute_sql('DROP TABLE "window_tag"'))
    owner("/browser/update", {})
    answer = owner("/browser/list")
    seen[answer.code] = answer.status
    assert seen == DOCUMENTED_STATUS
    assert answer.body == {"code": 500, "msg": "Internal server error", "data": {}}


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc",
                                    "Bearer bf_unknown", "Token bf_x", "bearer  "])
def test_missing_or_invalid_tokens_get_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.post("/browser/list", json={}, headers=headers)
    assert response.status_code == 401 and response.get_json()["code"] == 401


def test_a_revoked_token_stops_working(farm, owner):
    assert owner("/browser/list").code == 0
    in_db(farm, lambda: revoke_token(farm, raw=owner.token))
    assert owner("/browser/list").code == 401


def test_the_bearer_scheme_is_case_insensitive(owner, client):
    response = client.post("/browser/list", json={},
                           headers={"Authorization": f"bearer {owner.token}"})
    assert response.get_json()["code"] == 0


def test_unknown_api_is_404_in_the_envelope(owner):
    answer = owner("/browser/nope")
    assert (answer.status, answer.body) == (404, {"code": 404, "msg": "API not found",
                                                  "data": {}})


def test_get_on_a_post_endpoint_is_refused_in_the_envelope(client):
    response = client.get("/browser/list")
    assert response.status_code == 405 and response.get_json()["code"] == 211


def test_oversized_body_is_refused(owner, farm):
    size = farm.settings.max_body_bytes + 1
    answer = owner("/browser/update", raw=b"{" + b" " * size + b"}",
                   headers={"Content-Type": "application/json"})
    assert answer.status == 413 and answer.code == 211


def test_openapi_documents_every_endpoint_with_its_body(client):
    spec = client.get("/openapi.json").get_json()
    for path in SPEC_PATHS + ["/group/add", "/tag/list", "/browser/recycle/list"]:
        operation = spec["paths"][path]["post"]
        assert "requestBody" in operation, path
        assert "200" in operation["responses"], path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_are_served_without_any_cdn(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == []
    assets = re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))""", html)
    assert len(assets) >= 3
    for asset in assets:
        url = asset if asset.startswith("/") else f"/docs/{asset.lstrip('./')}"
        assert client.get(url).status_code == 200, url

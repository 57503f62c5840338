"""One error path: each API surface answers every error in its own shape through
browserfarm.api.errors, werkzeug's own errors included (a 405 names the allowed
methods, a 413 stays a 413)."""
from browserfarm.api.local import create_local_app
from tests.test_local import agent, cloud, local  # noqa: F401 - fixtures
from tests.test_v5 import v5, v5farm  # noqa: F401 - fixtures


def test_a_405_names_the_allowed_methods_on_the_window_api(client):
    answer = client.get("/browser/list")
    assert answer.status_code == 405 and _allowed(answer) == {"OPTIONS", "POST"}
    assert answer.get_json() == {"code": 211, "data": {},
                                 "msg": "Method not allowed: use POST with a JSON body"}


def test_a_405_names_the_allowed_methods_in_v5s_shape(v5):  # noqa: F811
    answer = v5("POST", "/5/status")
    assert answer.status_code == 405 and answer.get_json() == {"message": "Method Not Allowed"}
    assert _allowed(answer) == {"GET", "HEAD", "OPTIONS"}
    assert answer.headers["X-API-Version"] == "5"


def test_the_local_api_answers_its_errors_in_the_envelope(agent):  # noqa: F811
    client = create_local_app(agent).test_client()
    token = {"X-Cos-Local-Token": "local-secret"}
    wrong_method = client.get("/browser/open", headers=token)
    assert wrong_method.status_code == 405 and _allowed(wrong_method) == {"OPTIONS", "POST"}
    assert wrong_method.get_json()["code"] == 211
    too_large = client.post("/browser/open", data=b"{" + b" " * (16 * 1024 * 1024) + b"}",
                            headers=token | {"Content-Type": "application/json"})
    assert too_large.status_code == 413  # was a 500 (the catch-all took it)
    assert too_large.get_json() == {"code": 211, "msg": "Request body too large", "data": {}}
    missing = client.post("/nothing", headers=token)
    assert (missing.status_code, missing.get_json()) == (
        404, {"code": 404, "msg": "API not found", "data": {}})


def _allowed(answer) -> set[str]:
    return set(answer.headers["Allow"].split(", "))

"""Garbage into POST /5/worker and PUT url.json: always v5's answer shape, never a 500,
never a half-made worker."""
import json

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from browserfarm.models import Worker
from tests.conftest import in_db, make_farm
from tests.test_v5 import v5  # noqa: F401 - a fixture


@pytest.fixture
def v5farm(tmp_path, database_url):
    """As test_v5's, with a rate limit no fuzzing run reaches."""
    farm = make_farm(tmp_path / "data", database_url, rate_limit="100000 per 5 minutes")
    yield farm
    farm.close()

FIELDS = ["os", "os_version", "browser", "browser_version", "url", "timeout", "name",
          "build", "project", "resolution", "browserstack.video", "window", "device"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["Linux", "firefox", "latest",
                                                           "http://x.test/", "60", "1e9"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5),
                                                                       inner, max_size=3)),
                      max_leaves=5)
bodies = st.one_of(st.dictionaries(st.sampled_from(FIELDS), values, max_size=8), values)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_garbage_gets_a_v5_error_never_a_500(v5, body):  # noqa: F811
    for method, path in (("POST", "/5/worker"), ("PUT", "/5/worker/1/url.json")):
        answer = v5(method, path, data=json.dumps(body), content_type="application/json")
        assert answer.status_code in (200, 400, 403, 422), (body, answer.get_json())
        assert "message" in answer.get_json() or answer.status_code == 200
        if answer.status_code == 422 and answer.get_json()["message"] == "Validation Failed":
            for error in answer.get_json()["errors"]:
                assert error["code"] in ("required", "invalid") and error["field"]
    # No generated body names this machine's os_version: none may make a worker.
    assert in_db(v5.farm, lambda: Worker.select().count()) == 0

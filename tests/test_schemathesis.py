"""A bounded schemathesis run over our own OpenAPI document: generated requests (valid
and invalid) never get a 5xx, and every answer matches the documented schema."""
import base64
import re

import pytest
import schemathesis
from schemathesis import checks
from hypothesis import HealthCheck, given, settings

from browserfarm.app import create_app
from browserfarm.services.accounts import create_account
from tests.conftest import in_db, make_farm


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz")
    farm = make_farm(data_dir, f"sqlite:///{data_dir}/farm.db")
    app = create_app(farm=farm)
    new = in_db(farm, lambda: create_account(farm, "fuzz"))
    client = app.test_client()
    auth = {"Authorization": f"Bearer {new.token}"}
    basic = base64.b64encode(f"{new.v5_username}:{new.v5_access_key}".encode()).decode()
    # Something to find: windows, a group and a tag with small ids.
    group = client.post("/group/add", json={"groupName": "g"}, headers=auth).get_json()
    client.post("/tag/add", json={"name": "t"}, headers=auth)
    for _ in range(3):
        client.post("/browser/update", json={"groupId": group["data"]["id"]}, headers=auth)
    yield app, auth, {"Authorization": f"Basic {basic}"}
    farm.db.close()


NETWORK_PATHS = re.compile(r"/(check|refresh|launch)$")
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance,
          checks.status_code_conformance, checks.content_type_conformance]


def test_api_conforms_to_its_schema(fuzzed):
    """Each operation in turn; schemathesis's pytest plugin is driven by hand because
    its collection hooks don't support this pytest yet."""
    app, auth, v5_auth = fuzzed
    api_schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # 15 window, 5 group, 5 tag, 7 pool, 2 proxy, 5 profile; 11 of the worker API v5
    assert len(operations) == 50
    # Checks reach out through the proxy they are given: generated addresses could be
    # anywhere, and tests talk to loopback only. tests/test_proxies.py covers them.
    operations = [op for op in operations if not NETWORK_PATHS.search(op.path)]
    assert len(operations) == 46
    answered = set()
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case):
            # Not "positive data accepted": schema-valid requests may still name a
            # group or window that doesn't exist, and get their 211/404.
            response = case.call_and_validate(
                headers=v5_auth if case.path.startswith("/5") else auth, checks=CHECKS)
            answered.add((case.method, case.path, response.status_code))

        conforms()
    # The v5 credentials got through: not only 401s there.
    assert {("GET", "/5/status", 200), ("GET", "/5/workers", 200)} <= answered

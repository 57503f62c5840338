"""The dashboard's answers as another site's page or the browser's cache meet them: no
page may be framed by another site (clickjacking its buttons or its live view), and
pages, some of which show secrets, are not kept in the browser's cache after sign-out.
Flask's test client on a real SQLite farm, no browser."""
from __future__ import annotations

import re

import pytest

from bench import prepare_farm
from browserfarm.app import create_app
from browserfarm.models import Window
from browserfarm.services.accounts import create_token
from tests.conftest import in_db


@pytest.fixture
def client(tmp_path):
    fixture = prepare_farm(tmp_path, 3)
    farm = fixture.farm
    account = in_db(farm, lambda: Window.select(Window.account).first().account_id)
    token, _ = in_db(farm, lambda: create_token(farm, account, "owner", role="owner"))
    client = create_app(farm=farm).test_client()
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/signin", data={"csrf_token": csrf, "token": token}).status_code == 302
    yield client
    farm.close()


@pytest.mark.parametrize("path", ["/signin", "/windows", "/windows/1", "/proxies"])
def test_no_page_may_be_framed_by_another_site_nor_kept_in_the_browser_cache(client, path):
    answer = client.get(path)
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert answer.headers["Cache-Control"] == "no-store"


def test_assets_keep_their_own_caching(client):
    answer = client.get("/assets/dashboard/dashboard.css")
    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("Cache-Control", "")

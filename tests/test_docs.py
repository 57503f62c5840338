"""The API documentation at /docs: its introduction (how to get a token, each API's
auth, the Local API's calls, attaching Selenium and Puppeteer), every field of every
schema described with an example that the document itself accepts, and links between
/docs and the dashboard."""
from __future__ import annotations

import re

import jsonschema_rs
import pytest

from browserfarm.api.local import FORWARDED, create_local_app
from browserfarm.app import create_app
from browserfarm.services.accounts import create_account
from tests.conftest import in_db, make_farm
from tests.test_dashboard import sign_in

SECTIONS = ("## Getting a token", "## Authentication, API by API",
            "## The Local API (the desktop agent)",
            "## Attaching Selenium or Puppeteer to an opened window")


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("docs")
    farm = make_farm(data_dir, f"sqlite:///{data_dir}/farm.db")
    yield farm
    farm.close()


@pytest.fixture(scope="module")
def docs_client(farm):
    return create_app(farm=farm).test_client()


@pytest.fixture(scope="module")
def document(docs_client):
    return docs_client.get("/openapi.json").get_json()


def introduction(document) -> str:
    return document["info"]["description"]


def section(text: str, title: str) -> str:
    """The Markdown under ``title`` up to the next heading of its level."""
    return text.split(title, 1)[1].split("\n## ", 1)[0]


def test_docs_open_with_the_introduction_served_locally(docs_client, document):
    text = introduction(document)
    for title in SECTIONS:
        assert title in text, title
    for fact in ("var/credentials.json", "browserfarm token create", "Authorization: Bearer",
                 "v5_access_key", "X-Cos-Local-Token", "browserfarm local info",
                 'protocol: "webDriverBiDi"', "--marionette-port", "[Back to the dashboard](/)"):
        assert fact in text, fact
    page = docs_client.get("/docs/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "/openapi.json" in html
    assert not re.findall(r"""(?:src|href)=["'](?:https?:)?//""", html)  # no CDN


def test_the_dashboard_links_to_the_docs(docs_client, farm):
    account = in_db(farm, lambda: create_account(farm, "docs"))
    sign_in(docs_client, account.token)
    page = docs_client.get("/windows").get_data(as_text=True)
    assert 'href="/docs/"' in page


def test_the_local_api_section_names_what_the_agent_serves(document):
    local = section(introduction(document), "## The Local API (the desktop agent)")
    forwarded_part = local.split("every other path is 404", 1)[1]
    named_forwarded = set(re.findall(r"^\* `(/[\w/]+)`$", forwarded_part, re.M))
    assert named_forwarded == set(FORWARDED)
    served = {rule.rule for rule in create_local_app(None).url_map.iter_rules()
              if rule.endpoint != "static"}
    own_calls = set(re.findall(r"^\| `(/[\w/]+)` \|", local, re.M))
    assert own_calls == served - set(FORWARDED)
    attaching = section(introduction(document),
                        "## Attaching Selenium or Puppeteer to an opened window")
    # The fields /browser/open answers (browserfarm.agent.windows.Agent._opened).
    assert 'opened["marionettePort"]' in attaching and "opened.ws" in attaching


# flask-smorest's own schema for a pagination header, which no endpoint here uses.
NOT_OURS = {"PaginationMetadata"}


def _properties(document):
    """(schema name, property name, property) of every component schema."""
    for name, schema in document["components"]["schemas"].items():
        if name in NOT_OURS:
            continue
        for prop_name, prop in schema.get("properties", {}).items():
            yield name, prop_name, prop


def _nested(prop) -> bool:
    """A property that is another schema (or a list of them): its example is its
    schema's, made of the examples of that schema's properties."""
    inner = prop.get("items", prop)
    return "$ref" in inner or any("$ref" in part for part in
                                  inner.get("allOf", []) + inner.get("anyOf", []))


def test_every_field_of_every_schema_has_a_description_and_an_example(document):
    missing = [f"{name}.{prop_name}: {what}" for name, prop_name, prop in _properties(document)
               for what in ("description", "example")
               if what not in prop and not (what == "example" and _nested(prop))]
    assert not missing, "\n".join(missing)


def test_every_example_is_valid_by_the_document(document):
    wrong = []
    for name, prop_name, prop in _properties(document):
        if "example" not in prop or _nested(prop):
            continue
        schema = {k: v for k, v in prop.items() if k not in ("example", "nullable")}
        if prop.get("nullable"):
            schema = {"anyOf": [schema, {"type": "null"}]}
        schema["components"] = document["components"]  # where its $refs point
        wrong += [f"{name}.{prop_name}: {error.message}" for error in
                  jsonschema_rs.Draft4Validator(schema).iter_errors(prop["example"])]
    assert not wrong, "\n".join(wrong)

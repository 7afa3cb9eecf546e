"""Markup in what developers and users type comes back escaped from the
endpoints whose HTML fragments the editor swaps into its pages."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from flowdesk.system import System
from flowdesk.web.app import create_app
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    sign_in,
)
from tests.support.stored_flows import apply_flow

MARKUP = "<img src=x onerror=alert(1)>"

PLAIN = """
    id: plain
    name: Plain
    steps:
      - log: hi
"""


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "dev", ("flow:edit",))
    apply_flow(system, PLAIN)
    return create_app(system)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        sign_in(test_client, "dev")
        yield test_client


def post_json(client: TestClient, url: str, body: dict[str, str]) -> dict[str, str]:
    token = csrf_token(client.get("/flows").text)
    response = client.post(url, json=body, headers={"x-csrf-token": token})
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()
    return answer


def test_escaping_schema_preview_shows_titles_and_hints_as_text(
    client: TestClient,
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "customer": {
                "type": "string",
                "title": MARKUP,
                "description": "<script>alert(2)</script>",
                "default": '"><svg onload=alert(3)>',
                "enum": [MARKUP, "plain"],
            }
        },
    }

    answer = post_json(client, "/flows/-/schema-preview", {"text": json.dumps(schema)})

    html = answer["preview_html"]
    assert "<img" not in html and "<script" not in html and "<svg" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_escaping_outline_shows_step_names_as_text(client: TestClient) -> None:
    text = f'id: plain\nname: Plain\nsteps:\n  - name: "{MARKUP}"\n    log: hi\n'

    answer = post_json(client, "/flows/plain/validate", {"text": text})

    assert "<img" not in answer["outline_html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in answer["outline_html"]

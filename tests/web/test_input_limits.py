"""Limits on bad input over HTTP: request bodies, form fields, files, nesting,
input size, and input schemas that are huge or refer to themselves."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from flowdesk.inputs import MAX_DEPTH, MAX_INPUT_BYTES
from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.limits import MAX_FORM_FIELDS
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    count_runs,
    csrf_token,
    sign_in,
)
from tests.support.stored_flows import apply_flow

LIMIT = 1024 * 1024

NOTE = """
    id: note
    name: Note
    interactive:
      enabled: true
      allowed_triggers: [link_click]
      input_schema:
        type: object
        properties:
          text: {type: string}
          extra: {type: object}
    steps:
      - log: noted
"""

# Each level has two references back to the whole schema: naively expanded,
# 2**32 property names.
TWICE_RECURSIVE = """
    id: family-tree
    name: Family tree
    interactive:
      enabled: true
      allowed_triggers: [link_click]
      input_schema:
        type: object
        properties:
          name: {type: string}
          mother: {$ref: "#"}
          father: {$ref: "#"}
    steps:
      - log: "{{ inputs.name }}"
"""

# Two definitions that include each other, through properties and allOf.
MUTUALLY_RECURSIVE = """
    id: tangle
    name: Tangle
    interactive:
      enabled: true
      input_schema:
        type: object
        $defs:
          a: {type: object, required: [b], properties: {b: {$ref: "#/$defs/b"}}}
          b:
            type: object
            required: [a]
            properties: {a: {$ref: "#/$defs/a"}}
            allOf: [{$ref: "#/$defs/a"}]
        required: [x]
        properties:
          x: {$ref: "#/$defs/a"}
    steps:
      - log: tangled
"""


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "alice")
    for flow in (NOTE, TWICE_RECURSIVE, MUTUALLY_RECURSIVE):
        apply_flow(system, flow)
    return create_app(system)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        sign_in(test_client, "alice")
        yield test_client


def token_of(client: TestClient) -> str:
    return csrf_token(client.get("/interactive-flows").text)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"deeper": value}
    return value


# The request body


def test_body_over_the_limit_is_a_413_page(client: TestClient) -> None:
    response = client.post(
        "/interactive-flows/note/runs",
        content=b"text=" + b"x" * LIMIT,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "accept": "text/html",
        },
    )

    assert response.status_code == 413
    assert "Too large" in response.text
    assert "larger than the 1,048,576 bytes flowdesk accepts" in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_body_over_the_limit_is_a_413_json_on_the_api(client: TestClient) -> None:
    response = client.post(
        "/api/v1/flows/note/runs",
        content=b'{"inputs": {"text": "' + b"x" * LIMIT + b'"}}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert "1,048,576 bytes" in response.json()["error"]


def test_body_without_a_length_is_cut_off_at_the_limit(
    client: TestClient, system: System
) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        while sent < 20 * LIMIT:
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    response = client.post(
        "/interactive-flows/note/runs",
        content=endless(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-csrf-token": token_of(client),
        },
    )

    assert response.status_code == 413
    assert count_runs(system) == 0


def test_body_under_the_limit_gets_through(client: TestClient) -> None:
    response = client.post(
        "/interactive-flows/note/runs",
        data={"_csrf": token_of(client), "text": "x" * 500_000},
    )

    assert response.status_code == 303


# Form fields and files


def test_form_with_too_many_fields_is_refused_in_words(client: TestClient) -> None:
    fields = [(f"field{number}", "1") for number in range(MAX_FORM_FIELDS + 1)]

    response = client.post(
        "/interactive-flows/note/runs",
        data=dict([("_csrf", token_of(client)), *fields]),
        headers={"accept": "text/html"},
    )

    assert response.status_code == 413
    assert f"more than the {MAX_FORM_FIELDS:,} fields flowdesk accepts" in response.text


def test_form_with_a_file_is_refused(client: TestClient, system: System) -> None:
    response = client.post(
        "/interactive-flows/note/runs",
        data={"_csrf": token_of(client), "text": "hi"},
        files={"text": ("notes.txt", b"file contents", "text/plain")},
        headers={"accept": "text/html"},
    )

    assert response.status_code == 400
    assert "This form takes no files" in response.text
    assert count_runs(system) == 0


def test_multipart_without_a_boundary_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/interactive-flows/note/runs",
        content=b"--x\r\n\r\n",
        headers={
            "content-type": "multipart/form-data",
            "x-csrf-token": token_of(client),
        },
    )

    assert response.status_code == 400


# Nesting and size of input data


def test_link_nested_too_deep_is_reported_not_followed(client: TestClient) -> None:
    name = "extra." + ".".join(["level"] * (MAX_DEPTH + 5))

    response = client.get("/interactive-flows/note", params={name: "x"})

    assert response.status_code == 422
    assert f"at most {MAX_DEPTH} levels" in response.text


def test_api_input_nested_too_deep_is_a_422_naming_the_limit(
    client: TestClient, system: System
) -> None:
    response = client.post(
        "/api/v1/flows/note/runs",
        json={"inputs": {"text": "x", "extra": nested(MAX_DEPTH + 10)}},
        headers={"x-csrf-token": token_of(client)},
    )

    assert response.status_code == 422
    assert f"more than {MAX_DEPTH} levels deep" in response.json()["error"]
    assert count_runs(system) == 0


def test_api_json_nested_beyond_the_parser_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/api/v1/flows/note/runs",
        content=b'{"inputs": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        headers={"content-type": "application/json", "x-csrf-token": token_of(client)},
    )

    assert response.status_code in (400, 413)


def test_api_input_over_the_input_limit_is_a_422(client: TestClient) -> None:
    text = "x" * (MAX_INPUT_BYTES + 10)

    response = client.post(
        "/api/v1/flows/note/runs",
        content=json.dumps({"inputs": {"text": text}}),
        headers={"content-type": "application/json", "x-csrf-token": token_of(client)},
    )

    assert response.status_code == 422
    assert f"at most {MAX_INPUT_BYTES:,} bytes" in response.json()["error"]


# Schemas that refer to themselves


@pytest.mark.parametrize("flow_id", ["family-tree", "tangle"])
def test_recursive_schema_launch_page_answers_quickly(
    client: TestClient, flow_id: str
) -> None:
    started = time.monotonic()

    page = client.get(f"/interactive-flows/{flow_id}")
    link = client.get(
        f"/interactive-flows/{flow_id}",
        params={"mother.father.mother.name": "Ada", "start_flow": "true"},
    )
    posted = client.post(
        f"/interactive-flows/{flow_id}/runs",
        data={"_csrf": csrf_token(page.text), "father.father.name": "Bo"},
    )

    assert page.status_code == 200
    assert link.status_code in (200, 303, 422)
    assert posted.status_code in (303, 422)
    assert time.monotonic() - started < 10


def test_recursive_schema_link_starts_with_the_nested_value(
    client: TestClient, system: System
) -> None:
    response = client.get(
        "/interactive-flows/family-tree",
        params={"name": "Cy", "mother.father.name": "Ada", "start_flow": "true"},
    )

    assert response.status_code == 303
    assert count_runs(system, "family-tree") == 1


def test_form_limits_hold_when_the_token_comes_in_a_header(
    client: TestClient, system: System
) -> None:
    response = client.post(
        "/interactive-flows/note/runs",
        files={"text": ("notes.txt", b"file contents", "text/plain")},
        headers={"x-csrf-token": token_of(client), "accept": "text/html"},
    )

    assert response.status_code == 400
    assert count_runs(system) == 0

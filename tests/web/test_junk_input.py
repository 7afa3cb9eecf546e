"""No input produces a 500: every route the app registers gets odd path
values, query strings, bodies and headers, signed in with every scope (so that
the junk gets past the door) and signed out, and must answer in words."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowdesk.web.app import create_app
from tests.support.access import (
    EVERYTHING,
    ROLES,
    RouteKey,
    World,
    build_world,
    client_for,
    fill_path,
    offline_app,
    open_copy,
    parameters_of,
    registered_routes,
)
from tests.support.interactive import cheap_password_hashing

ROUTES = registered_routes(offline_app())
SIGNED_OUT = ROLES[0]

ODD_PATH_VALUES = [
    "%00",
    "%FF%FE",
    "..%2F..%2Fetc%2Fpasswd",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "x" * 3000,
    "%F0%9F%98%80",
    "'%20OR%201=1--",
    "%3Cscript%3E",
    "%20",
]

ODD_QUERIES = [
    "q=%FF&cursor=%00&limit=-5&after=abc",
    "limit=999999999999999999999&cursor=" + "z" * 5000,
    "cursor=eyJ4Ijp7fX0&flow=%00",
    "next=//evil.com&done=%3Cb%3E&saved=x&deleted=y",
    "start_flow=true&" + "&".join(f"a{i}.b.c=1" for i in range(300)),
    "customer=%E2%80%AE&items=NaN&express=maybe&tags=[1,&address={",
    "%ZZ=%ZZ&&&==&=",
]

# (content type, body)
ODD_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"{"),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b'"just a string"'),
    ("application/json", b'{"inputs": "not an object", "text": 5}'),
    ("application/json", b'{"inputs": {"x": 1e999}, "text": null}'),
    ("application/json", b'{"text": "' + b"\\ud800" + b'"}'),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", b"[" * 50_000),
    ("application/x-www-form-urlencoded", b"%ZZ=1&name=%FF&scope=%00&&=="),
    ("application/x-www-form-urlencoded", b"source=" + b"%C3%28" * 1000),
    ("application/x-www-form-urlencoded", b"&".join([b"f=1"] * 1200)),
    ("multipart/form-data", b"no boundary here"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
    ("text/plain", b"\x00\x01\x02"),
    ("", b""),
]

ODD_HEADERS: list[dict[str, str | bytes]] = [
    {"last-event-id": "not-a-number"},
    {"last-event-id": "-99999999999999999999"},
    {"authorization": "Bearer \x7f\x7f"},
    {"authorization": "Basic !!!"},
    {"x-csrf-token": "\xe9\xe8".encode("latin-1")},
    {"origin": "http://[::1"},
    {"referer": "http://[bad"},
    {"accept": "text/html, application/json;q=0.5"},
    {"cookie": "flowdesk_session=" + "x" * 3000},
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("FLOWDESK_") and name != "FLOWDESK_TEST_STRICT":
                patch.delenv(name)
        cheap_password_hashing(patch)
        yield build_world(tmp_path_factory.mktemp("junk") / "data")


def junk_requests(route: RouteKey, world: World) -> Iterator[dict[str, Any]]:
    """One request per odd thing, each otherwise well-formed."""
    good = world.path_values()
    url = fill_path(route.path, good)
    for name in parameters_of(route.path):
        for value in ODD_PATH_VALUES:
            yield {"url": fill_path(route.path, {**good, name: value})}
    for query in ODD_QUERIES:
        yield {"url": f"{url}?{query}"}
    if route.method != "GET":
        for content_type, body in ODD_BODIES:
            headers = {"content-type": content_type} if content_type else {}
            yield {"url": url, "content": body, "headers": headers}
    for headers in ODD_HEADERS:
        yield {"url": url, "headers": headers}


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_junk_input_never_produces_a_server_error(
    route: RouteKey,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cheap_password_hashing(monkeypatch)
    system = open_copy(world, tmp_path / "data")
    app = create_app(system)
    failures = []

    for role in (EVERYTHING, SIGNED_OUT):
        with client_for(app, world, role, raise_server_exceptions=False) as client:
            for request in junk_requests(route, world):
                response = client.request(route.method, **request)
                if response.status_code >= 500:
                    failures.append(
                        f"{role.label}: {request} -> {response.status_code}"
                    )
                elif "Traceback" in response.text:
                    failures.append(f"{role.label}: {request} shows a traceback")
    system.db.dispose()

    assert not failures, "\n".join(failure[:600] for failure in failures)

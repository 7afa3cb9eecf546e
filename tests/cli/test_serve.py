"""`flowdesk serve` as a real process: the first start creates `admin` with a
password shown once and loads the examples; later starts show no password."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from flowdesk.cli.main import app
from flowdesk.flows.definition import bundled_examples
from tests.support.interactive import sign_in_fields_of
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow

PASSWORD_LINE = re.compile(r"Created the user admin with the password (\S+) ")


def sign_in(server: LiveServer, password: str) -> int:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        form = sign_in_fields_of(client.get("/login").text)
        response = client.post(
            "/login", data={**form, "username": "admin", "password": password}
        )
    return response.status_code


def test_serve_first_start_shows_the_admin_password_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Empty, so that flowdesk makes up the password itself.
    env = {"FLOWDESK_ADMIN_PASSWORD": ""}

    first = LiveServer(data_dir, env=env).start()
    try:
        found = PASSWORD_LINE.search(first.log())
        assert found is not None, first.log()
        password = found.group(1)
        assert f"Loaded {len(bundled_examples())} example flows." in first.log()
        assert sign_in(first, password) == 303
        assert sign_in(first, password + "x") == 401
    finally:
        first.stop()

    second = LiveServer(data_dir, env=env).start()
    try:
        assert "password" not in second.log()
        assert "example flows" not in second.log()
        assert sign_in(second, password) == 303
    finally:
        second.stop()


def test_serve_uses_the_given_admin_password_without_printing_it(
    live_server: LiveServer,
) -> None:
    from tests.support.server import ADMIN_PASSWORD

    assert ADMIN_PASSWORD not in live_server.log()
    assert "password" not in live_server.log()
    assert sign_in(live_server, ADMIN_PASSWORD) == 303


def test_serve_refuses_bad_settings_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append(app))

    result = CliRunner().invoke(
        app,
        ["serve"],
        env={
            "FLOWDESK_DATA_DIR": str(tmp_path / "data"),
            "FLOWDESK_EXECUTOR": "celery",
        },
    )

    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid settings: ")
    assert "FLOWDESK_BROKER_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert served == []


def test_serve_refuses_a_short_admin_password_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append(app))

    result = CliRunner().invoke(
        app,
        ["serve"],
        env={
            "FLOWDESK_DATA_DIR": str(tmp_path / "data"),
            "FLOWDESK_ADMIN_PASSWORD": "short",
        },
    )

    assert result.exit_code == 2
    assert "FLOWDESK_ADMIN_PASSWORD" in result.stderr
    assert "Traceback" not in result.output
    assert served == []


def test_serve_refuses_a_required_sandbox_the_kernel_lacks_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append(app))
    monkeypatch.setattr(
        "flowdesk.workers.pool._landlock_abi", lambda: (0, "this kernel has none")
    )

    result = CliRunner().invoke(
        app,
        ["serve"],
        env={
            "FLOWDESK_DATA_DIR": str(tmp_path / "data"),
            "FLOWDESK_PYTHON_SANDBOX": "required",
        },
    )

    assert result.exit_code == 2
    assert "FLOWDESK_PYTHON_SANDBOX=required" in result.stderr
    assert "this kernel has none" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert served == []

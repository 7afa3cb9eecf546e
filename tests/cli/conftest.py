"""Running `flowdesk` commands in-process against a fresh data dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from flowdesk.cli.main import app
from tests.support.interactive import cheap_password_hashing

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Commands run in this process; hashing at full cost only slows them down.
    cheap_password_hashing(monkeypatch)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def flowdesk(data_dir: Path) -> Invoke:
    """Call like the shell would: `flowdesk("users", "list")`; `input=` feeds
    standard input."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        result = runner.invoke(
            app,
            list(args),
            input=input,
            env={"FLOWDESK_DATA_DIR": str(data_dir)},
            catch_exceptions=False,
        )
        # Whatever went wrong, the user is told in words, not in a traceback.
        assert "Traceback" not in result.output
        return result

    return invoke


def write_flow(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path

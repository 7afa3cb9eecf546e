"""Settings: defaults, `FLOWDESK_*` variables, the data dir and its secret key,
and the refusal of settings that cannot work."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flowdesk.errors import ConfigError
from flowdesk.settings import SECRET_KEY_FILE, Settings, load_settings

POSTGRES_URL = "postgresql+psycopg://flowdesk@db.internal/flowdesk"


@pytest.fixture(autouse=True)
def _empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A `.env` is read from the working directory; start from one without it.
    monkeypatch.chdir(tmp_path)


def test_settings_defaults_serve_locally_from_a_data_dir_here() -> None:
    settings = load_settings()

    assert settings.data_dir == Path(".flowdesk")
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.executor == "local"
    expected = (Path(".flowdesk") / "flowdesk.db").resolve()
    assert settings.resolved_database_url == f"sqlite:///{expected}"


def test_settings_read_flowdesk_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("FLOWDESK_HOST", "0.0.0.0")
    monkeypatch.setenv("FLOWDESK_PORT", "9100")
    monkeypatch.setenv("FLOWDESK_DATABASE_URL", POSTGRES_URL)
    monkeypatch.setenv("FLOWDESK_BASE_URL", "https://flows.example.com")
    monkeypatch.setenv("FLOWDESK_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.setenv("FLOWDESK_MAX_CONCURRENT_RUNS", "3")

    settings = load_settings()

    assert settings.data_dir == tmp_path / "elsewhere"
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)
    assert settings.resolved_database_url == POSTGRES_URL
    assert settings.base_url == "https://flows.example.com"
    assert settings.admin_password == "correct horse battery"
    assert settings.max_concurrent_runs == 3


def test_settings_read_a_dotenv_file_in_the_working_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("FLOWDESK_PORT=9200\nFLOWDESK_HOST=::1\n")

    settings = load_settings()

    assert (settings.host, settings.port) == ("::1", 9200)


def test_settings_environment_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("FLOWDESK_PORT=9200\n")
    monkeypatch.setenv("FLOWDESK_PORT", "9300")

    assert load_settings().port == 9300


def test_settings_data_dir_is_created_only_when_needed(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "data"
    settings = Settings(data_dir=data_dir)
    assert not data_dir.exists()

    settings.prepare_data_dir()

    assert data_dir.is_dir()
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0


def test_settings_data_dir_that_cannot_be_made_is_refused_by_name(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = Settings(data_dir=blocker / "data")

    with pytest.raises(ConfigError) as refused:
        settings.prepare_data_dir()

    assert str(blocker / "data") in refused.value.message
    assert "FLOWDESK_DATA_DIR" in refused.value.message


def test_settings_secret_key_is_generated_once_and_kept_private(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"

    first = Settings(data_dir=data_dir).resolved_secret_key()
    second = Settings(data_dir=data_dir).resolved_secret_key()

    assert first == second
    assert len(first) >= 32
    key_file = data_dir / SECRET_KEY_FILE
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) & 0o077 == 0


def test_settings_secret_key_differs_between_data_dirs(tmp_path: Path) -> None:
    one = Settings(data_dir=tmp_path / "one").resolved_secret_key()
    two = Settings(data_dir=tmp_path / "two").resolved_secret_key()

    assert one != two


def test_settings_given_secret_key_is_used_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k" * 40
    monkeypatch.setenv("FLOWDESK_SECRET_KEY", key)
    monkeypatch.setenv("FLOWDESK_DATA_DIR", str(tmp_path / "data"))

    settings = load_settings()

    assert settings.resolved_secret_key() == key
    assert not (tmp_path / "data" / SECRET_KEY_FILE).exists()


def test_settings_distributed_setup_with_postgres_and_broker_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWDESK_EXECUTOR", "celery")
    monkeypatch.setenv("FLOWDESK_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("FLOWDESK_DATABASE_URL", POSTGRES_URL)
    monkeypatch.setenv("FLOWDESK_SECRET_KEY", "s" * 40)

    assert load_settings().executor == "celery"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        pytest.param(
            {"FLOWDESK_EXECUTOR": "celery", "FLOWDESK_DATABASE_URL": POSTGRES_URL},
            "FLOWDESK_BROKER_URL",
            id="celery-without-broker",
        ),
        pytest.param(
            {"FLOWDESK_EXECUTOR": "celery", "FLOWDESK_BROKER_URL": "redis://r/0"},
            "FLOWDESK_DATABASE_URL",
            id="celery-with-sqlite",
        ),
        pytest.param(
            {
                "FLOWDESK_EXECUTOR": "celery",
                "FLOWDESK_BROKER_URL": "amqp://mq/",
                "FLOWDESK_DATABASE_URL": POSTGRES_URL,
            },
            "FLOWDESK_BROKER_URL",
            id="celery-with-a-broker-other-than-redis",
        ),
        pytest.param(
            {
                "FLOWDESK_EXECUTOR": "celery",
                "FLOWDESK_BROKER_URL": "redis://r/0",
                "FLOWDESK_DATABASE_URL": POSTGRES_URL,
            },
            "FLOWDESK_SECRET_KEY",
            id="celery-without-a-shared-secret-key",
        ),
        pytest.param(
            {"FLOWDESK_SECRET_KEY": "too-short"},
            "FLOWDESK_SECRET_KEY",
            id="short-secret-key",
        ),
        pytest.param(
            {"FLOWDESK_BASE_URL": "flows.example.com"},
            "FLOWDESK_BASE_URL",
            id="base-url-without-scheme",
        ),
        pytest.param(
            {"FLOWDESK_BASE_URL": "https://"},
            "FLOWDESK_BASE_URL",
            id="base-url-without-host",
        ),
        pytest.param(
            {"FLOWDESK_EXECUTOR": "threads"}, "FLOWDESK_EXECUTOR", id="unknown-executor"
        ),
        pytest.param(
            {"FLOWDESK_PORT": "eighty"}, "FLOWDESK_PORT", id="port-not-number"
        ),
        pytest.param({"FLOWDESK_PORT": "70000"}, "FLOWDESK_PORT", id="port-too-high"),
    ],
)
def test_settings_unsafe_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as refused:
        load_settings()

    message = refused.value.message
    assert named in message
    # Said once, not "FLOWDESK_X: FLOWDESK_X must ...".
    assert message.count(named) == 1


def test_settings_refusal_names_the_bad_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWDESK_PORT", "eighty")

    with pytest.raises(ConfigError) as refused:
        load_settings()

    assert "'eighty'" in refused.value.message


def test_settings_refusal_never_repeats_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWDESK_SECRET_KEY", "hunter2-short")

    with pytest.raises(ConfigError) as refused:
        load_settings()

    assert "hunter2" not in refused.value.message

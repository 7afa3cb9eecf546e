"""The one settings class: `FLOWDESK_*` environment variables and a `.env` file."""

from __future__ import annotations

import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowdesk.errors import ConfigError

SECRET_KEY_FILE = "secret_key"
_OWNER_READ_WRITE = stat.S_IRUSR | stat.S_IWUSR
# Their values may hold passwords, so an error message never repeats them.
_SECRET_FIELDS = frozenset(
    {"secret_key", "admin_password", "database_url", "broker_url"}
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWDESK_", env_file=".env", extra="ignore"
    )

    data_dir: Path = Path(".flowdesk")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: str | None = None
    executor: Literal["local", "celery"] = "local"
    broker_url: str | None = None
    admin_password: str | None = None
    base_url: str | None = None

    # Limits that keep a bad flow from hurting the server.
    max_concurrent_runs: int = Field(default=32, ge=1)
    max_loop_iterations: int = Field(default=100_000, ge=1)
    max_sleep_seconds: float = Field(default=3600.0, gt=0)
    max_run_seconds: float = Field(default=24 * 3600.0, gt=0)
    session_hours: float = Field(default=12.0, gt=0)
    # Sign-in throttling: failures counted per account and per client address
    # over a sliding window; a success clears the account's count.
    sign_in_account_failures: int = Field(default=5, ge=1)
    sign_in_address_failures: int = Field(default=20, ge=1)
    sign_in_window_minutes: float = Field(default=15.0, gt=0)
    # The largest request body accepted, in bytes (1 MiB).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed.
    forwarded_allow_ips: str = "127.0.0.1"
    # Steps that reach outside the server.
    python_workers: int = Field(default=2, ge=1)  # warm processes per process
    python_timeout_seconds: float = Field(default=60.0, gt=0)
    python_memory_mb: int = Field(default=512, ge=32)  # the most a step may use
    # Landlock confinement of the workers: `auto` uses it where the kernel has
    # it, `required` refuses to start without it.
    python_sandbox: Literal["required", "auto", "off"] = "auto"
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    http_max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_run_depth: int = Field(default=10, ge=1)  # run_flow inside run_flow ...
    # A running run whose heartbeat is older than this is taken for dead (its
    # process crashed or lost the database) and marked failed as interrupted.
    stale_run_seconds: float = Field(default=60.0, ge=2.0)
    load_examples: bool = True

    @field_validator("secret_key")
    @classmethod
    def _secret_key_long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 32:
            raise ValueError(
                "FLOWDESK_SECRET_KEY must be at least 32 characters; unset it to "
                "let flowdesk generate one in the data dir"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.executor == "celery":
            if not self.broker_url:
                raise ValueError(
                    "FLOWDESK_EXECUTOR=celery needs FLOWDESK_BROKER_URL "
                    "(for example redis://127.0.0.1:6379/0)"
                )
            if self.resolved_database_url.startswith("sqlite"):
                raise ValueError(
                    "FLOWDESK_EXECUTOR=celery needs a shared database: set "
                    "FLOWDESK_DATABASE_URL=postgresql+psycopg://..."
                )
            scheme = urlsplit(self.broker_url).scheme
            if scheme not in ("redis", "rediss"):
                raise ValueError(
                    "FLOWDESK_BROKER_URL must be a redis:// or rediss:// address, "
                    "since Redis carries the live run events as well; got one "
                    f"starting {scheme + '://' if scheme else 'without a scheme'}"
                )
            if not self.secret_key:
                raise ValueError(
                    "FLOWDESK_EXECUTOR=celery needs FLOWDESK_SECRET_KEY, set to "
                    "the same value in every process: a key generated in each "
                    "machine's data dir would leave workers unable to read the "
                    "secrets web processes store"
                )
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    "FLOWDESK_BASE_URL must be an http:// or https:// address with "
                    f"a host, such as https://flows.example.com; got {self.base_url!r}"
                )
        return self

    @property
    def served_over_https(self) -> bool:
        """Whether browsers reach flowdesk through https:// (FLOWDESK_BASE_URL)."""
        return bool(self.base_url and self.base_url.startswith("https://"))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'flowdesk.db').resolve()}"

    def prepare_data_dir(self) -> None:
        """Create the data dir (owner-only) if it does not exist yet."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the data dir {str(self.data_dir)!r}: {exc.strerror}. "
                "Set FLOWDESK_DATA_DIR to a writable folder."
            ) from exc

    def resolved_secret_key(self) -> str:
        """The configured key, else the one kept in the data dir (made once)."""
        if self.secret_key:
            return self.secret_key
        self.prepare_data_dir()
        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(48)
        # Created with owner-only permissions from the start, never widened.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _OWNER_READ_WRITE)
        except FileExistsError:
            # Another process starting at the same moment made it first.
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def load_settings() -> Settings:
    """Read the settings, turning validation failures into one ConfigError."""
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(_settings_message(exc)) from None


def _settings_message(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    lines = []
    for error in errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        text = str(error.get("msg", "")).removeprefix("Value error, ")
        name = f"FLOWDESK_{where.upper()}"
        if where and where not in _SECRET_FIELDS and "input" in error:
            text += f", got {error['input']!r}"
        lines.append(text if not where or name in text else f"{name}: {text}")
    return "Invalid settings: " + "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

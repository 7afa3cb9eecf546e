"""The tables. Flow versions are immutable; a run always points at the version it
ran, so editing a flow never rewrites history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flowdesk.db.types import JSONDocument, UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


class Flow(Base):
    """A flow's identity and a copy of its current version's listing fields."""

    __tablename__ = "flows"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("flow_versions.id", use_alter=True, name="fk_flows_current_version")
    )
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(500), default="")
    tags: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    interactive: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    groups: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    scheduled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    current_version: Mapped[FlowVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True
    )


class FlowVersion(Base):
    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    source: Mapped[str] = mapped_column(Text)
    # sha256 of the canonical JSON of `definition`: an unchanged apply is a no-op.
    digest: Mapped[str] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # Keyset pagination of a flow's history, newest first.
        Index("ix_runs_flow_created", "flow_id", "created_at", "id"),
        Index("ix_runs_flow_user_created", "flow_id", "user_id", "created_at", "id"),
        Index("ix_runs_created", "created_at", "id"),
        # Recovery and dispatch look for unfinished runs only.
        Index("ix_runs_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id"))
    state: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    parent_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id"), default=None, index=True
    )
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status_message: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float | None] = mapped_column(Float, default=None)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, default=None)
    html: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_step: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Which process holds the run while it executes, and when it last said so.
    owner: Mapped[str | None] = mapped_column(String(100), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    # 1 for the first execution; a run retried after its process died counts up.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Set by a cancel request, so that the runner holding the run sees it on its
    # next heartbeat even when the event bus that normally carries it is away.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)

    flow: Mapped[Flow] = relationship()
    version: Mapped[FlowVersion] = relationship()
    user: Mapped[User | None] = relationship()


class RunEvent(Base):
    """The ordered log of a run: log lines, state changes, status updates."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # log, state, status, result
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserGroup(Base):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    groups: Mapped[list[Group]] = relationship(secondary="user_groups", lazy="selectin")

    @property
    def group_names(self) -> set[str]:
        return {group.name for group in self.groups}


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is
    stored, so a leaked database does not leak live sessions."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()

    user: Mapped[User] = relationship(lazy="joined")


class ScheduleFire(Base):
    """One fire time of a flow's schedule and the run it started. The unique
    (flow_id, fire_time) pair is what lets several schedulers race for a fire
    time and still start exactly one run; the latest row per flow is where a
    restarted scheduler resumes."""

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("flow_id", "fire_time", name="uq_schedule_fires_flow_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id"))
    fire_time: Mapped[datetime] = mapped_column()
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Secret(Base):
    """A named secret. Only its ciphertext is stored, sealed with a key derived
    from the server's secret key and bound to the name (see flowdesk.secrets)."""

    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Connection(Base):
    """A named base URL with default headers and authentication for `http`
    steps. `auth` names a secret; it never holds a credential itself."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    base_url: Mapped[str] = mapped_column(String(2000))
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    auth: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A credential that an external system sends as `Authorization: Bearer ...`.
    Only the sha256 of the token is kept: the token itself is shown once, when
    it is made, and a leaked table cannot be replayed."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, so that a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # None: valid until revoked.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")


class SignInFailure(Base):
    """One failed sign-in. Recent rows are counted per account and per client
    address to slow password guessing down, across every server process."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_username", "username", "failed_at"),
        Index("ix_sign_in_failures_address", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # As typed, so that a name that does not exist is counted like one that does.
    username: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)

"""API tokens: credentials that external systems send as `Authorization: Bearer
...` to the JSON API. A token carries its own scopes and acts as its owner, with
no more than the owner holds at the time of use.

Only the sha256 of a token is stored. That is enough here, unlike for
passwords: a token has 256 random bits, so there is nothing to guess from its
hash, and a fast hash keeps every API request cheap.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowdesk.auth.users import check_scopes
from flowdesk.db.models import ApiToken, User
from flowdesk.db.types import utcnow
from flowdesk.errors import Conflict, FlowdeskError, NotFound, NotSignedIn

logger = logging.getLogger(__name__)

# A recognisable prefix lets secret scanners and people spot a leaked token.
TOKEN_PREFIX = "fdk_"
PREFIX_SHOWN = len(TOKEN_PREFIX) + 6
MAX_TOKEN_CHARS = 200
MAX_NAME_CHARS = 100
# Recording every use would make each API request a write; a minute is
# precise enough to tell which tokens are still in use.
LAST_USED_PRECISION = timedelta(minutes=1)
# The longest lifetime a token can be given, in days: ten years.
MAX_EXPIRY_DAYS = 3650
EXPIRY_FORMAT = "%Y-%m-%d %H:%M UTC"

TokenState = Literal["active", "expired", "revoked"]


@dataclass(frozen=True)
class NewToken:
    """A token just made: `secret` is shown once and never again."""

    record: ApiToken
    secret: str


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def expiry_in(days: int | None, now: datetime | None = None) -> datetime | None:
    """When a token made now expires after `days` (None: never)."""
    if days is None:
        return None
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise FlowdeskError(
            f"A token expires after 1 to {MAX_EXPIRY_DAYS:,} days; got {days}."
        )
    return (now or utcnow()) + timedelta(days=days)


def token_state(record: ApiToken, now: datetime | None = None) -> TokenState:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def create_token(
    session: Session,
    name: str,
    owner: User,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> NewToken:
    """Make a token for `owner` with `scopes`, which the owner must hold,
    valid until revoked or until `expires_at`."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise FlowdeskError(
            f"A token needs a name of 1 to {MAX_NAME_CHARS} characters, such as "
            f"'billing-system'; got {name[:120]!r}."
        )
    checked = check_scopes(scopes)
    if not checked:
        raise FlowdeskError("Give the token at least one scope.")
    missing = [scope for scope in checked if scope not in owner.scopes]
    if missing:
        raise Conflict(
            f"The user {owner.username!r} does not have the scope {missing[0]!r}, "
            "so a token of theirs cannot have it either."
        )
    if owner.disabled:
        raise Conflict(f"The user {owner.username!r} is disabled.")
    if expires_at is not None and expires_at <= utcnow():
        raise FlowdeskError(
            "A token must expire in the future; got "
            f"{expires_at.strftime(EXPIRY_FORMAT)}."
        )

    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[:PREFIX_SHOWN],
        user_id=owner.id,
        scopes=checked,
        created_at=utcnow(),
        expires_at=expires_at,
    )
    record.user = owner
    session.add(record)
    session.flush()
    logger.info(
        "API token %s (%s) created for %s with scopes %s, expiring %s",
        record.id,
        name,
        owner.username,
        ",".join(checked),
        expires_at.strftime(EXPIRY_FORMAT) if expires_at else "never",
    )
    return NewToken(record, secret)


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, the live ones first, newest first within each."""
    query = select(ApiToken).order_by(
        ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id
    )
    return list(session.scalars(query))


def get_token(session: Session, token_id: int) -> ApiToken:
    # Beyond a 64-bit column no token can be, and the driver would raise.
    record = session.get(ApiToken, token_id) if 0 < token_id < 2**63 else None
    if record is None:
        raise NotFound(f"There is no API token with the id {token_id}.")
    return record


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke a token; it is refused from its next request on."""
    record = get_token(session, token_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        logger.info("API token %s (%s) revoked", record.id, record.name)
    return record


@dataclass(frozen=True)
class TokenUse:
    """Who a valid token acts for, and with which scopes."""

    token_id: int
    user: User
    scopes: frozenset[str]
    # Whether the last-used time is old enough to be written again.
    stale: bool


def resolve_token(session: Session, secret: str) -> TokenUse | None:
    """The use a Bearer token grants, or None when it is unknown, revoked, or
    its owner is disabled. Its scopes are cut to those its owner still has.

    Raises NotSignedIn saying so when the token has expired: its caller holds
    the token and may learn that, and it tells them what to do."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_TOKEN_CHARS:
        return None
    record = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_hash(secret))
    )
    if record is None or record.revoked_at is not None or record.user.disabled:
        return None
    now = utcnow()
    if token_state(record, now) == "expired":
        assert record.expires_at is not None
        raise NotSignedIn(
            f"The API token {record.prefix}... expired on "
            f"{record.expires_at.strftime(EXPIRY_FORMAT)}; ask an administrator "
            "for a new one."
        )
    stale = (
        record.last_used_at is None or now - record.last_used_at >= LAST_USED_PRECISION
    )
    scopes = frozenset(record.scopes) & frozenset(record.user.scopes)
    return TokenUse(record.id, record.user, scopes, stale)


def mark_used(session: Session, token_id: int) -> None:
    record = session.get(ApiToken, token_id)
    if record is not None:
        record.last_used_at = utcnow()

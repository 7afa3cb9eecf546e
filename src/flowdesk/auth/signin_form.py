"""The sign-in form's pre-session token, against forged sign-ins (login CSRF).

Before sign-in there is no session to tie a CSRF token to, so the sign-in page
hands out a pair: a cookie with a random nonce and the time it was issued, and
a hidden field with the HMAC of that cookie under the server's secret key. A
POST is accepted only with both, matching and not older than the lifetime.
Another site can make a browser post the form, but can neither read the
browser's cookie nor compute the field for a cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowdesk.db.types import utcnow

# Long enough to read the page, look up a password and type it.
FORM_LIFETIME = timedelta(hours=2)
# Longer values are none this module made.
MAX_TOKEN_CHARS = 200
# Keeps this key apart from anything else derived from the secret key.
_PURPOSE = b"flowdesk sign-in form\x00"


@dataclass(frozen=True)
class SignInFormToken:
    cookie: str  # kept by the browser, HttpOnly
    field: str  # the form's hidden field


def issue_form_token(secret_key: str, now: datetime | None = None) -> SignInFormToken:
    issued = int((now or utcnow()).timestamp())
    cookie = f"{issued}.{secrets.token_urlsafe(24)}"
    return SignInFormToken(cookie, _sign(secret_key, cookie))


def form_token_for(
    secret_key: str, cookie: str | None, now: datetime | None = None
) -> SignInFormToken:
    """The pair for the browser's cookie while it has half its lifetime left,
    so that two sign-in tabs of one browser both work; else a new pair."""
    now = now or utcnow()
    age = _age(cookie, now) if cookie else None
    if cookie and age is not None and age <= FORM_LIFETIME.total_seconds() / 2:
        return SignInFormToken(cookie, _sign(secret_key, cookie))
    return issue_form_token(secret_key, now)


def form_token_valid(
    secret_key: str,
    cookie: str | None,
    field: str | None,
    now: datetime | None = None,
    lifetime: timedelta = FORM_LIFETIME,
) -> bool:
    """Whether the cookie and the field are a pair this server issued, within
    `lifetime` of `now`."""
    if not cookie or not field:
        return False
    if len(field) > MAX_TOKEN_CHARS:
        return False
    age = _age(cookie, now or utcnow())
    if age is None or age > lifetime.total_seconds():
        return False
    return hmac.compare_digest(field.encode(), _sign(secret_key, cookie).encode())


def _age(cookie: str, now: datetime) -> float | None:
    """Seconds since the cookie was issued; None when it is malformed or
    from the future."""
    if len(cookie) > MAX_TOKEN_CHARS:
        return None
    issued, _, nonce = cookie.partition(".")
    if not issued.isdigit() or not nonce:
        return None
    age = now.timestamp() - int(issued)
    return age if age >= 0 else None


def _sign(secret_key: str, cookie: str) -> str:
    digest = hmac.new(
        secret_key.encode(), _PURPOSE + cookie.encode(), hashlib.sha256
    ).hexdigest()
    return digest

"""The sign-in form's pre-session token: a cookie and a field that only this
server can pair, for a limited time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowdesk.auth.signin_form import (
    FORM_LIFETIME,
    form_token_for,
    form_token_valid,
    issue_form_token,
)
from flowdesk.db.types import utcnow

KEY = "k" * 48


def test_signin_form_token_pair_is_valid() -> None:
    token = issue_form_token(KEY)

    assert form_token_valid(KEY, token.cookie, token.field)


def test_signin_form_tokens_differ_each_time() -> None:
    assert issue_form_token(KEY).cookie != issue_form_token(KEY).cookie


@pytest.mark.parametrize(
    ("cookie", "field"),
    [(None, "x"), ("1.x", None), ("", ""), ("abc.def", "x"), ("123", "x")],
)
def test_signin_form_token_malformed_is_refused(
    cookie: str | None, field: str | None
) -> None:
    assert not form_token_valid(KEY, cookie, field)


def test_signin_form_token_of_another_key_is_refused() -> None:
    token = issue_form_token("o" * 48)

    assert not form_token_valid(KEY, token.cookie, token.field)


def test_signin_form_token_field_of_another_cookie_is_refused() -> None:
    first, second = issue_form_token(KEY), issue_form_token(KEY)

    assert not form_token_valid(KEY, first.cookie, second.field)


def test_signin_form_token_expires_after_its_lifetime() -> None:
    issued = utcnow() - FORM_LIFETIME - timedelta(seconds=5)
    token = issue_form_token(KEY, now=issued)

    assert not form_token_valid(KEY, token.cookie, token.field)
    assert form_token_valid(
        KEY, token.cookie, token.field, now=issued + timedelta(minutes=1)
    )


def test_signin_form_token_from_the_future_is_refused() -> None:
    token = issue_form_token(KEY, now=utcnow() + timedelta(hours=1))

    assert not form_token_valid(KEY, token.cookie, token.field)


def test_signin_form_token_for_a_fresh_cookie_reuses_it() -> None:
    # Two sign-in tabs of one browser: the second must not spoil the first.
    first = issue_form_token(KEY)

    assert form_token_for(KEY, first.cookie) == first


def test_signin_form_token_for_an_old_or_bad_cookie_is_new() -> None:
    old = issue_form_token(KEY, now=utcnow() - FORM_LIFETIME * 0.75)

    for cookie in (old.cookie, "junk", None):
        renewed = form_token_for(KEY, cookie)
        assert renewed.cookie != cookie
        assert form_token_valid(KEY, renewed.cookie, renewed.field)

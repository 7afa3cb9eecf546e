"""Secrets at rest: encrypted with a key derived from the server's, bound to
their names, and refused when they could not be masked."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from flowdesk.db.models import Secret
from flowdesk.errors import FlowdeskError, NotFound
from flowdesk.secrets.store import (
    SecretBox,
    delete_secret,
    list_secrets,
    load_secrets,
    secret_box,
    set_secret,
)
from flowdesk.system import System

VALUE = "s3cr3t-Value-for-the-shop"


def test_secret_is_encrypted_at_rest(system: System) -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), "SHOP_TOKEN", VALUE)

    with system.db.reading() as session:
        stored = session.execute(text("SELECT name, ciphertext FROM secrets")).one()
    assert stored.name == "SHOP_TOKEN"
    assert VALUE not in stored.ciphertext
    assert stored.ciphertext.startswith("v1:")
    raw = system.db.url.removeprefix("sqlite:///")
    with open(raw, "rb") as database:
        assert VALUE.encode() not in database.read()


def test_secret_round_trips_through_load_secrets(system: System) -> None:
    box = secret_box(system.settings)
    with system.db.transaction() as session:
        assert set_secret(session, box, "A_TOKEN", VALUE) is True
        assert set_secret(session, box, "B_TOKEN", "other-value") is True

    with system.db.reading() as session:
        assert load_secrets(session, system.settings) == {
            "A_TOKEN": VALUE,
            "B_TOKEN": "other-value",
        }


def test_secret_set_again_replaces_the_value(system: System) -> None:
    box = secret_box(system.settings)
    with system.db.transaction() as session:
        set_secret(session, box, "TOKEN", "first-value")
    with system.db.transaction() as session:
        assert set_secret(session, box, "TOKEN", "second-value") is False

    with system.db.reading() as session:
        [secret] = list_secrets(session)
        assert secret.updated_at >= secret.created_at
        assert load_secrets(session, system.settings) == {"TOKEN": "second-value"}


def test_secret_cannot_be_read_with_another_server_key(system: System) -> None:
    sealed = SecretBox("a" * 40).seal("TOKEN", VALUE)

    with pytest.raises(FlowdeskError, match="cannot be decrypted with this server's"):
        SecretBox("b" * 40).open("TOKEN", sealed)


def test_secret_ciphertext_is_bound_to_its_name() -> None:
    box = SecretBox("a" * 40)
    sealed = box.seal("TOKEN", VALUE)

    with pytest.raises(FlowdeskError, match="'OTHER' cannot be decrypted"):
        box.open("OTHER", sealed)


def test_load_secrets_leaves_out_one_it_cannot_read(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), "GOOD", VALUE)
        session.add(
            Secret(
                name="BROKEN", ciphertext=SecretBox("z" * 40).seal("BROKEN", "x" * 8)
            )
        )

    with system.db.reading() as session:
        assert load_secrets(session, system.settings) == {"GOOD": VALUE}
    assert "The secret 'BROKEN' cannot be decrypted" in caplog.text
    assert VALUE not in caplog.text


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("shop-token", VALUE, "must be letters, digits and '_'"),
        ("9LIVES", VALUE, "not starting with a digit"),
        ("PIN", "123", "at least 4 characters"),
        ("HUGE", "x" * 70_000, "at most 65536 characters"),
    ],
)
def test_set_secret_refuses_bad_names_and_values(
    system: System, name: str, value: str, problem: str
) -> None:
    with (
        system.db.transaction() as session,
        pytest.raises(FlowdeskError, match=problem),
    ):
        set_secret(session, secret_box(system.settings), name, value)


def test_delete_secret(system: System) -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), "TOKEN", VALUE)
    with system.db.transaction() as session:
        delete_secret(session, "TOKEN")

    with system.db.reading() as session:
        assert session.scalars(select(Secret)).all() == []
    with system.db.transaction() as session, pytest.raises(NotFound, match="'TOKEN'"):
        delete_secret(session, "TOKEN")

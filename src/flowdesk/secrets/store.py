"""Secrets: named values that flows read as `{{ secrets.NAME }}`, stored only
encrypted.

Values are sealed with AES-GCM under a key derived by HKDF-SHA256 from the
server's secret key (`Settings.resolved_secret_key()`). The secret's name is the
associated data, so a ciphertext copied to another row does not decrypt there.
Changing the server's secret key makes stored secrets unreadable: they must be
set again.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowdesk.db.models import Secret
from flowdesk.db.types import utcnow
from flowdesk.errors import FlowdeskError, NotFound
from flowdesk.settings import Settings

logger = logging.getLogger(__name__)

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# Shorter values are not masked in logs (the engine would garble every line that
# happens to hold two letters), so they are refused rather than left visible.
SHORTEST_VALUE = 4
LONGEST_VALUE = 64 * 1024

_KEY_INFO = b"flowdesk secrets v1"
_FORMAT = "v1:"
_NONCE_BYTES = 12


class SecretBox:
    """Seals and opens secret values with a key derived from the server key."""

    def __init__(self, server_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO
        ).derive(server_key.encode())
        self._cipher = AESGCM(key)

    def seal(self, name: str, value: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, value.encode(), name.encode())
        return _FORMAT + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, name: str, ciphertext: str) -> str:
        """The value sealed for `name`; raises FlowdeskError if it cannot be
        read with this key."""
        try:
            if not ciphertext.startswith(_FORMAT):
                raise ValueError("unknown format")
            raw = base64.urlsafe_b64decode(ciphertext.removeprefix(_FORMAT))
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._cipher.decrypt(nonce, sealed, name.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise FlowdeskError(
                f"The secret '{name}' cannot be decrypted with this server's secret"
                " key (was FLOWDESK_SECRET_KEY changed?); set it again."
            ) from None


def secret_box(settings: Settings) -> SecretBox:
    return _box_for_key(settings.resolved_secret_key())


@lru_cache(maxsize=4)
def _box_for_key(server_key: str) -> SecretBox:
    # Deriving the key is cheap, but runs read secrets on every start.
    return SecretBox(server_key)


def check_secret_name(name: str) -> str:
    if SECRET_NAME.fullmatch(name) is None:
        raise FlowdeskError(
            f"A secret's name must be letters, digits and '_', not starting with a"
            f" digit, at most 100 characters (flows read it as"
            f" {{{{ secrets.NAME }}}}); got {name!r}."
        )
    return name


def set_secret(session: Session, box: SecretBox, name: str, value: str) -> bool:
    """Store `value` under `name`, replacing any earlier value. True when the
    secret is new."""
    check_secret_name(name)
    if len(value) < SHORTEST_VALUE:
        raise FlowdeskError(
            f"A secret's value must be at least {SHORTEST_VALUE} characters, since"
            f" shorter values cannot be masked in logs; this one has {len(value)}."
        )
    if len(value) > LONGEST_VALUE:
        raise FlowdeskError(
            f"A secret's value may have at most {LONGEST_VALUE} characters;"
            f" this one has {len(value)}."
        )

    ciphertext = box.seal(name, value)
    secret = session.scalar(select(Secret).where(Secret.name == name))
    now = utcnow()
    if secret is None:
        session.add(
            Secret(name=name, ciphertext=ciphertext, created_at=now, updated_at=now)
        )
        logger.info("secret %s created", name)
        return True
    secret.ciphertext = ciphertext
    secret.updated_at = now
    logger.info("secret %s changed", name)
    return False


def list_secrets(session: Session) -> list[Secret]:
    """Every secret, by name. Callers show names and times, never values."""
    return list(session.scalars(select(Secret).order_by(Secret.name)))


def delete_secret(session: Session, name: str) -> None:
    secret = session.scalar(select(Secret).where(Secret.name == name))
    if secret is None:
        raise NotFound(f"There is no secret named {name!r}.")
    session.delete(secret)
    logger.info("secret %s deleted", name)


# Read for every run: built once, and run on the session's connection.
_RUN_SECRETS = select(Secret.name, Secret.ciphertext)


def load_secrets(session: Session, settings: Settings) -> dict[str, str]:
    """Every readable secret's value, for one run. A secret that cannot be
    decrypted is left out (a flow using it fails naming it) and logged."""
    rows = session.connection().execute(_RUN_SECRETS).all()
    if not rows:
        return {}
    box = secret_box(settings)
    values = {}
    for name, ciphertext in rows:
        try:
            values[name] = box.open(name, ciphertext)
        except FlowdeskError as error:
            logger.warning("%s", error.message)
    return values

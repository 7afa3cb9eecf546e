"""First start: an `admin` user with every scope, and the bundled example flows."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from flowdesk.auth.scopes import ALL_SCOPES
from flowdesk.auth.users import check_password, create_user, generate_password
from flowdesk.db.models import User
from flowdesk.errors import ConfigError, FlowdeskError
from flowdesk.flows.definition import bundled_examples, load_file
from flowdesk.flows.service import ApplyOutcome, apply_definition
from flowdesk.system import System

logger = logging.getLogger(__name__)

ADMIN_NAME = "admin"


@dataclass(frozen=True)
class FirstStart:
    admin_password: str | None  # generated and to be shown once; None if given
    examples: list[ApplyOutcome]


def first_start(system: System) -> FirstStart | None:
    """Set up an empty database; None when it had users already."""
    try:
        return _set_up(system)
    except IntegrityError:
        # Another process starting at the same moment set it up first.
        logger.info("first start: another process created the admin user")
        return None


def _set_up(system: System) -> FirstStart | None:
    with system.db.transaction() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
        given = system.settings.admin_password
        if given:
            try:
                check_password(given)
            except FlowdeskError as exc:
                raise ConfigError(f"FLOWDESK_ADMIN_PASSWORD: {exc.message}") from None
        password = given or generate_password()
        create_user(session, ADMIN_NAME, password, list(ALL_SCOPES))
        examples = []
        if system.settings.load_examples:
            for path in bundled_examples():
                definition = load_file(path)
                source = path.read_text(encoding="utf-8")
                examples.append(
                    apply_definition(session, definition, source, "flowdesk")
                )
    logger.info("first start: created user admin and %s example flows", len(examples))
    return FirstStart(None if given else password, examples)

"""Fast password hashing: these tests hash and check many passwords and are
about what is stored and accepted, not about the cost of hashing."""

from __future__ import annotations

import pytest

from tests.support.interactive import cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_password_hashing(monkeypatch)

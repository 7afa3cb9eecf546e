"""The scopes a user or token can hold."""

from __future__ import annotations

FLOW_RUN = "flow:run"
FLOW_EDIT = "flow:edit"
ADMIN = "admin"

ALL_SCOPES = (FLOW_RUN, FLOW_EDIT, ADMIN)

SCOPE_NAMES = {
    FLOW_RUN: "Flow Run",
    FLOW_EDIT: "Flow Developer",
    ADMIN: "Administrator",
}

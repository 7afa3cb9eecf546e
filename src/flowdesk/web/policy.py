"""Who may use each route, in one table.

The handlers enforce access themselves (`require`, `csrf_protected`, and the
visibility rules of flows and runs); this table states the intent, and
tests/web/test_authorization_matrix.py holds every route the app registers
against it for every kind of user. A new route without an entry here fails
that test: add the route's line when you add the route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flowdesk.auth.scopes import ADMIN, FLOW_EDIT, FLOW_RUN

# "group": an interactive flow limited to groups is answered with 404, as if it
# did not exist, for flow users outside them. "owner": a run is answered with
# 404 for everyone but the user who started it, developers and administrators.
Hidden = Literal["", "group", "owner"]


@dataclass(frozen=True)
class Access:
    """The rule of one route."""

    # Any one of these scopes lets a signed-in user in; none: any signed-in user.
    scopes: tuple[str, ...] = ()
    # Open to everyone, signed in or not.
    public: bool = False
    hidden: Hidden = ""
    # A POST from a page: refused without the session's CSRF token (a request
    # with an API token needs none) and from a foreign Origin or Referer.
    csrf: bool = False


PUBLIC = Access(public=True)
SIGNED_IN = Access()
RUNS = (FLOW_RUN, FLOW_EDIT, ADMIN)


def needs(*scopes: str, hidden: Hidden = "", csrf: bool = False) -> Access:
    return Access(scopes=scopes, hidden=hidden, csrf=csrf)


POLICY: dict[tuple[str, str], Access] = {
    # Front door, sign-in, health, the API description.
    ("GET", "/"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    # No session to tie a token to yet: the pre-session token of the sign-in
    # form and the Origin/Referer check guard it.
    ("POST", "/login"): Access(public=True, csrf=True),
    ("POST", "/logout"): Access(csrf=True),
    # One's own account.
    ("GET", "/account"): SIGNED_IN,
    ("POST", "/account/password"): Access(csrf=True),
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    # Interactive Flows.
    ("GET", "/interactive-flows"): needs(FLOW_RUN),
    # With start_flow=true this GET starts a run: see docs/security.md.
    ("GET", "/interactive-flows/{flow_id}"): needs(FLOW_RUN, hidden="group"),
    ("POST", "/interactive-flows/{flow_id}/runs"): needs(
        FLOW_RUN, hidden="group", csrf=True
    ),
    ("GET", "/interactive-flows/{flow_id}/runs"): needs(FLOW_RUN, hidden="group"),
    # Runs.
    ("GET", "/runs/{run_id}"): needs(*RUNS, hidden="owner"),
    ("GET", "/runs/{run_id}/events"): needs(*RUNS, hidden="owner"),
    ("GET", "/runs/{run_id}/result"): needs(*RUNS, hidden="owner"),
    ("POST", "/runs/{run_id}/cancel"): needs(*RUNS, hidden="owner", csrf=True),
    ("POST", "/runs/{run_id}/rerun"): needs(*RUNS, hidden="owner", csrf=True),
    # The JSON API (browser sessions and API tokens).
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/flows"): needs(FLOW_RUN),
    ("GET", "/api/v1/flows/{flow_id}"): needs(FLOW_RUN, hidden="group"),
    ("POST", "/api/v1/flows/{flow_id}/runs"): needs(
        FLOW_RUN, hidden="group", csrf=True
    ),
    ("GET", "/api/v1/runs"): needs(*RUNS),
    ("GET", "/api/v1/runs/{run_id}"): needs(*RUNS, hidden="owner"),
    # The flow editor and Flow Settings.
    ("GET", "/flows"): needs(FLOW_EDIT),
    ("POST", "/flows"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/flows/{flow_id}"): needs(FLOW_EDIT),
    ("POST", "/flows/{flow_id}"): needs(FLOW_EDIT, csrf=True),
    ("POST", "/flows/{flow_id}/validate"): needs(FLOW_EDIT, csrf=True),
    ("POST", "/flows/-/schema-preview"): needs(FLOW_EDIT, csrf=True),
    ("POST", "/flows/-/schedule-preview"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/flows/{flow_id}/settings"): needs(FLOW_EDIT),
    ("POST", "/flows/{flow_id}/settings"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/flows/{flow_id}/versions"): needs(FLOW_EDIT),
    ("GET", "/flows/{flow_id}/versions/{number}"): needs(FLOW_EDIT),
    ("POST", "/flows/{flow_id}/versions/{number}/restore"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/flows/{flow_id}/test-run"): needs(FLOW_EDIT),
    ("POST", "/flows/{flow_id}/test-run"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/flows/{flow_id}/delete"): needs(FLOW_EDIT),
    ("POST", "/flows/{flow_id}/delete"): needs(FLOW_EDIT, csrf=True),
    # Connections, beside the editor: steps name them, and credentials are
    # only the names of secrets, whose values stay with administrators.
    ("GET", "/connections"): needs(FLOW_EDIT),
    ("POST", "/connections"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/connections/new"): needs(FLOW_EDIT),
    ("GET", "/connections/{connection_name}/edit"): needs(FLOW_EDIT),
    ("POST", "/connections/{connection_name}/edit"): needs(FLOW_EDIT, csrf=True),
    ("GET", "/connections/{connection_name}/delete"): needs(FLOW_EDIT),
    ("POST", "/connections/{connection_name}/delete"): needs(FLOW_EDIT, csrf=True),
    # Administration.
    ("GET", "/admin/users"): needs(ADMIN),
    ("POST", "/admin/users"): needs(ADMIN, csrf=True),
    ("GET", "/admin/users/{username}"): needs(ADMIN),
    ("POST", "/admin/users/{username}/scopes"): needs(ADMIN, csrf=True),
    ("POST", "/admin/users/{username}/groups"): needs(ADMIN, csrf=True),
    ("POST", "/admin/users/{username}/password"): needs(ADMIN, csrf=True),
    ("POST", "/admin/users/{username}/disable"): needs(ADMIN, csrf=True),
    ("POST", "/admin/users/{username}/enable"): needs(ADMIN, csrf=True),
    ("GET", "/admin/users/{username}/delete"): needs(ADMIN),
    ("POST", "/admin/users/{username}/delete"): needs(ADMIN, csrf=True),
    ("GET", "/admin/groups"): needs(ADMIN),
    ("POST", "/admin/groups"): needs(ADMIN, csrf=True),
    ("GET", "/admin/groups/{group}/delete"): needs(ADMIN),
    ("POST", "/admin/groups/{group}/delete"): needs(ADMIN, csrf=True),
    ("GET", "/admin/tokens"): needs(ADMIN),
    ("POST", "/admin/tokens"): needs(ADMIN, csrf=True),
    ("POST", "/admin/tokens/{token_id}/revoke"): needs(ADMIN, csrf=True),
    ("GET", "/admin/secrets"): needs(ADMIN),
    ("POST", "/admin/secrets"): needs(ADMIN, csrf=True),
    ("GET", "/admin/secrets/{name}/delete"): needs(ADMIN),
    ("POST", "/admin/secrets/{name}/delete"): needs(ADMIN, csrf=True),
}

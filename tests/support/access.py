"""A small stored world for the tests that walk every route: one user per kind
of viewer, each with a live session, a flow limited to a group, a finished run
of one of its members, an API token, a secret and a connection using it.

It is built once per test module and copied for each test, so that a request
that changes something (a deleted flow, a disabled user) cannot change what
the next test sees, while no test pays for migrations and hashing again.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from flowdesk.auth.sessions import open_session
from flowdesk.auth.tokens import create_token
from flowdesk.auth.users import create_user, get_user
from flowdesk.db import Database
from flowdesk.runs.service import start_run
from flowdesk.secrets.connections import build_auth, set_connection
from flowdesk.secrets.store import secret_box, set_secret
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from flowdesk.web.app import create_app
from flowdesk.web.auth import CSRF_HEADER, SESSION_COOKIE
from tests.support.interactive import PASSWORD, TestClient, wait_until_finished
from tests.support.stored_flows import apply_flow

GROUP = "finance"
SITE = "http://testserver"

GROUP_FLOW = """
    id: close-books
    name: Close the books
    location: Finance
    interactive:
      enabled: true
      input_schema: true
      groups: [finance]
    steps:
      - log: Closed
      - html: "<p>Closed</p>"
"""


@dataclass(frozen=True)
class Role:
    """A kind of viewer; `username` None is a visitor who is not signed in."""

    label: str
    username: str | None
    scopes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def sees_everything(self) -> bool:
        return "flow:edit" in self.scopes or "admin" in self.scopes


ROLES = (
    Role("signed out", None),
    Role("no scope", "nobody"),
    Role("flow:run", "runner", ("flow:run",)),
    Role("flow:run in the group", "member", ("flow:run",), (GROUP,)),
    Role("flow:edit", "developer", ("flow:edit",)),
    Role("admin", "root", ("admin",)),
)
# Started the stored run.
RUN_OWNER = "member"
# Holds every scope and the group: allowed everywhere.
EVERYTHING = Role("every scope", "boss", ("flow:run", "flow:edit", "admin"), (GROUP,))


@dataclass(frozen=True)
class Credentials:
    cookie: str
    csrf: str


@dataclass
class World:
    """The stored world's data dir and what tests need to address its parts."""

    data_dir: Path
    run_id: str = ""
    token_id: int = 0
    api_token: str = ""
    sessions: dict[str, Credentials] = field(default_factory=dict)

    def path_values(self) -> dict[str, str]:
        """A value for each path parameter the app's routes use, naming a thing
        that exists (so that a 404 can only mean "hidden")."""
        return {
            "flow_id": "close-books",
            "run_id": self.run_id,
            "number": "1",
            "username": "runner",
            "token_id": str(self.token_id),
            "name": "SHOP_TOKEN",
            "connection_name": "shop",
            "group": GROUP,
        }

    def copy_to(self, folder: Path) -> Settings:
        shutil.copytree(self.data_dir, folder)
        return Settings(data_dir=folder, load_examples=False)


def build_world(data_dir: Path) -> World:
    settings = Settings(data_dir=data_dir, load_examples=False)
    system = open_system(settings)
    world = World(data_dir)
    with system.db.transaction() as session:
        for role in (*ROLES, EVERYTHING):
            if role.username is not None:
                create_user(
                    session,
                    role.username,
                    PASSWORD,
                    list(role.scopes),
                    list(role.groups),
                )
        set_secret(session, secret_box(settings), "SHOP_TOKEN", "shop-secret-value")
        set_connection(
            session,
            "shop",
            "https://shop.example/api",
            {},
            build_auth("bearer", "SHOP_TOKEN"),
        )
    apply_flow(system, GROUP_FLOW)

    with TestClient(create_app(system)):
        with system.db.reading() as session:
            owner = get_user(session, RUN_OWNER)
        run = start_run(system, "close-books", {}, "form", user=owner)
        wait_until_finished(system, run.id)
    world.run_id = run.id

    with system.db.transaction() as session:
        made = create_token(session, "robot", get_user(session, "root"), ["admin"])
        world.token_id, world.api_token = made.record.id, made.secret
        for role in (*ROLES, EVERYTHING):
            if role.username is not None:
                user = get_user(session, role.username)
                opened = open_session(session, user, timedelta(hours=2))
                world.sessions[role.username] = Credentials(
                    opened.token, opened.csrf_token
                )
    system.db.dispose()
    return world


def open_copy(world: World, folder: Path) -> System:
    return open_system(world.copy_to(folder), migrate=False)


def client_for(app: FastAPI, world: World, role: Role, **options: object) -> TestClient:
    """A test client signed in as `role` (or not at all), sending the session's
    CSRF token and this site's Origin with every request."""
    client = TestClient(app, follow_redirects=False, **options)  # type: ignore[arg-type]
    if role.username is not None:
        credentials = world.sessions[role.username]
        client.cookies.set(SESSION_COOKIE, credentials.cookie)
        client.headers[CSRF_HEADER] = credentials.csrf
    client.headers["origin"] = SITE
    return client


@dataclass(frozen=True)
class RouteKey:
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def registered_routes(app: FastAPI) -> list[RouteKey]:
    """Every method and path the app answers, static files left out."""
    keys = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount) or route.path is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            keys.append(RouteKey(method, route.path))
    return keys


def offline_app() -> FastAPI:
    """The app, built without a database, only to list its routes."""
    settings = Settings(data_dir=Path("unused"), database_url="sqlite://")
    return create_app(System(settings=settings, db=Database("sqlite://")))


_PARAMETER = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")


def fill_path(path: str, values: dict[str, str]) -> str:
    return _PARAMETER.sub(lambda found: values[found.group(1)], path)


def parameters_of(path: str) -> Iterator[str]:
    for found in _PARAMETER.finditer(path):
        yield found.group(1)

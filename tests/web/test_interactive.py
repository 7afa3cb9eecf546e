"""The Interactive Flows pages over HTTP: the list, the launch form, starting
runs from the form and from links, and a flow's past runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import select
from starlette.types import Message

from flowdesk.db.models import User
from flowdesk.runs.service import create_run
from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.routes.interactive import RunStartedRedirect
from tests.support.interactive import (
    PASSWORD,
    TestClient,
    add_user,
    cheap_password_hashing,
    count_runs,
    csrf_token,
    only_run,
    run_id_of,
    sign_in,
    sign_in_form,
)
from tests.support.stored_flows import apply_flow

ORDER_REPORT = """
    id: order-report
    name: Order report
    location: Sales/Reports
    tags: [sales, weekly]
    description: Summarises a customer's open orders.
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [customer]
        properties:
          customer: {type: string, title: Customer name}
          items: {type: integer, title: Number of items, minimum: 1, default: 1}
          express: {type: boolean, title: Express delivery}
          tags: {type: array, title: Tags, items: {type: string}}
      allowed_triggers: [link_click]
      link_sharing: true
    steps:
      - html: "<p>{{ inputs.customer }}</p>"
"""

NO_LINK_START = """
    id: careful
    name: Careful letter
    location: Legal
    tags: [letters]
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [customer]
        properties:
          customer: {type: string, title: Customer name}
      allowed_triggers: []
    steps:
      - log: Written
"""

FINANCE_ONLY = """
    id: close-books
    name: Close the books
    location: Finance
    tags: [finance]
    interactive:
      enabled: true
      groups: [finance]
    steps:
      - log: Closed
"""

NOT_INTERACTIVE = """
    id: nightly-sync
    name: Nightly sync
    steps:
      - log: Synced
"""

NO_INPUT = """
    id: ping
    name: Ping the team
    interactive:
      enabled: true
      input_schema: {type: object}
    steps:
      - log: Pinged
"""


@pytest.fixture
def client(system: System, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    cheap_password_hashing(monkeypatch)
    for text in (ORDER_REPORT, NO_LINK_START, FINANCE_ONLY, NOT_INTERACTIVE, NO_INPUT):
        apply_flow(system, text)
    add_user(system, "admin", ("flow:run", "flow:edit", "admin"))
    add_user(system, "alice")
    add_user(system, "fiona", groups=("finance",))
    with TestClient(create_app(system)) as test_client:
        sign_in(test_client, "alice")
        yield test_client


def launch_form(client: TestClient, flow_id: str) -> str:
    response = client.get(f"/interactive-flows/{flow_id}")
    assert response.status_code == 200, response.text
    return response.text


def user_id(system: System, name: str) -> int:
    with system.db.reading() as session:
        user = session.scalar(select(User).where(User.username == name))
        assert user is not None
        return user.id


# The list


def test_list_shows_interactive_flows_with_launch_buttons(client: TestClient) -> None:
    page = client.get("/interactive-flows")

    assert page.status_code == 200
    assert "Order report" in page.text and "Sales/Reports" in page.text
    assert '<span class="tag">weekly</span>' in page.text
    assert "Nightly sync" not in page.text
    launch = re.search(
        r'<a [^>]*href="/interactive-flows/order-report"[^>]*>', page.text
    )
    assert launch is not None
    assert 'aria-describedby="flow-name-order-report"' in launch.group(0)
    assert 'id="flow-name-order-report">Order report<' in page.text
    assert page.text.count(">Launch</a>") == 3  # order-report, careful, ping


def test_list_shows_group_flows_only_to_members(client: TestClient) -> None:
    assert "Close the books" not in client.get("/interactive-flows").text

    sign_in(client, "fiona")
    assert "Close the books" in client.get("/interactive-flows").text

    sign_in(client, "admin")
    assert "Close the books" in client.get("/interactive-flows").text


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        pytest.param("order", "Order report", "Careful letter", id="name"),
        pytest.param("legal", "Careful letter", "Order report", id="location"),
        pytest.param("WEEKLY", "Order report", "Careful letter", id="tag"),
    ],
)
def test_list_filter_matches_name_location_and_tag(
    client: TestClient, query: str, expected: str, absent: str
) -> None:
    page = client.get("/interactive-flows", params={"q": query})

    assert expected in page.text
    assert absent not in page.text
    assert f'value="{query}"' in page.text


def test_list_filter_without_match_says_so(client: TestClient) -> None:
    page = client.get("/interactive-flows", params={"q": "payroll"})

    assert "No flow matches “payroll”" in page.text
    assert 'href="/interactive-flows">Show all flows' in page.text


def test_list_without_any_flow_explains_the_empty_page(
    client: TestClient, system: System
) -> None:
    add_user(system, "newbie")
    for text in (ORDER_REPORT, NO_LINK_START, NO_INPUT):
        apply_flow(system, text.replace("enabled: true", "enabled: false"))
    sign_in(client, "newbie")

    page = client.get("/interactive-flows")

    assert "No interactive flows yet" in page.text
    assert 'role="search"' not in page.text


def test_list_escapes_flow_values(client: TestClient, system: System) -> None:
    apply_flow(
        system,
        """
        id: sneaky
        name: "<script>alert(1)</script>"
        interactive: {enabled: true}
        steps: [{log: hi}]
        """,
    )

    page = client.get("/interactive-flows")

    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_list_sends_signed_out_visitor_to_sign_in_and_back(system: System) -> None:
    add_user(system, "alice")
    with TestClient(create_app(system)) as client:
        response = client.get("/interactive-flows?q=sales", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + quote(
        "/interactive-flows?q=sales", safe=""
    )


def test_list_needs_the_flow_run_scope(client: TestClient, system: System) -> None:
    add_user(system, "viewer", scopes=())
    sign_in(client, "viewer")

    assert client.get("/interactive-flows").status_code == 403


# The launch page


def test_launch_page_shows_the_form_and_start_flow(client: TestClient) -> None:
    page = launch_form(client, "order-report")

    assert "<h1>Order report</h1>" in page
    assert "Summarises a customer&#39;s open orders." in page
    assert 'action="/interactive-flows/order-report/runs"' in page
    assert 'method="post"' in page
    assert re.search(r'<input type="hidden" name="_csrf" value="[^"]+">', page)
    assert "Customer name" in page and 'name="customer"' in page
    assert ">Start Flow</button>" in page
    assert 'href="/interactive-flows/order-report/runs"' in page
    copy = re.search(r"<button [^>]*data-copy-link[^>]*>Copy Link</button>", page, re.S)
    assert copy is not None and " hidden" in copy.group(0)


def test_launch_page_without_input_says_so(client: TestClient) -> None:
    page = launch_form(client, "ping")

    assert "This flow requires no input data" in page
    assert ">Start Flow</button>" in page
    assert "Copy Link" not in page  # link sharing is off


@pytest.mark.parametrize(
    "flow_id",
    [
        pytest.param("close-books", id="other-group"),
        pytest.param("nightly-sync", id="not-interactive"),
        pytest.param("no-such-flow", id="unknown"),
    ],
)
def test_launch_page_of_unavailable_flow_is_not_found(
    client: TestClient, flow_id: str
) -> None:
    page = client.get(f"/interactive-flows/{flow_id}")

    assert page.status_code == 404
    assert "Close the books" not in page.text
    assert "Nightly sync" not in page.text
    assert client.get(f"/interactive-flows/{flow_id}/runs").status_code == 404


def test_post_to_unavailable_flow_is_not_found(
    client: TestClient, system: System
) -> None:
    token = csrf_token(launch_form(client, "order-report"))

    response = client.post("/interactive-flows/close-books/runs", data={"_csrf": token})

    assert response.status_code == 404
    assert count_runs(system) == 0


# Starting from the form


def test_post_valid_form_starts_a_run_and_redirects(
    client: TestClient, system: System
) -> None:
    token = csrf_token(launch_form(client, "order-report"))

    response = client.post(
        "/interactive-flows/order-report/runs",
        data={
            "_csrf": token,
            "customer": "ACME GmbH",
            "items": "5",
            "express": ["false", "true"],
            "tags": ["[]", "a", "b"],
        },
        follow_redirects=False,
    )

    assert response.status_code == 303
    run = only_run(system, "order-report")
    assert response.headers["location"] == f"/runs/{run.id}"
    assert run.trigger == "form"
    assert run.user_id == user_id(system, "alice")
    assert run.inputs == {
        "customer": "ACME GmbH",
        "items": 5,
        "express": True,
        "tags": ["a", "b"],
    }


def test_post_invalid_form_returns_it_with_errors_and_no_run(
    client: TestClient, system: System
) -> None:
    token = csrf_token(launch_form(client, "order-report"))

    response = client.post(
        "/interactive-flows/order-report/runs",
        data={"_csrf": token, "customer": "", "items": "five"},
    )

    assert response.status_code == 422
    assert count_runs(system) == 0
    page = response.text
    assert 'value="five"' in page  # kept as typed
    assert "Customer name" in page
    assert re.search(r'href="#[^"]*customer', page), "summary links to the field"
    assert re.search(r'href="#[^"]*items', page)
    assert 'aria-invalid="true"' in page


def test_post_add_button_redraws_form_without_starting(
    client: TestClient, system: System
) -> None:
    token = csrf_token(launch_form(client, "order-report"))

    response = client.post(
        "/interactive-flows/order-report/runs",
        data={
            "_csrf": token,
            "customer": "ACME",
            "tags": ["[]", "a"],
            "_action": "add:tags",
        },
    )

    assert response.status_code == 200
    assert count_runs(system) == 0
    assert 'value="ACME"' in response.text
    assert response.text.count('name="tags"') >= 2


@pytest.mark.parametrize(
    "token",
    [pytest.param(None, id="missing"), pytest.param("forged-token", id="wrong")],
)
def test_post_without_the_csrf_token_is_refused(
    client: TestClient, system: System, token: str | None
) -> None:
    data = {"customer": "ACME"}
    if token is not None:
        data["_csrf"] = token

    response = client.post("/interactive-flows/order-report/runs", data=data)

    assert response.status_code == 403
    assert count_runs(system) == 0


def test_post_from_another_site_is_refused(client: TestClient, system: System) -> None:
    token = csrf_token(launch_form(client, "order-report"))

    response = client.post(
        "/interactive-flows/order-report/runs",
        data={"_csrf": token, "customer": "ACME"},
        headers={"origin": "https://evil.example"},
    )

    assert response.status_code == 403
    assert count_runs(system) == 0


# Links


def test_link_prefills_the_form_by_the_schema(client: TestClient) -> None:
    page = client.get(
        "/interactive-flows/order-report",
        params=[("customer", "ACME GmbH"), ("items", "5"), ("tags", "a,b")],
    ).text

    assert 'value="ACME GmbH"' in page
    assert 'value="5"' in page
    assert 'value="a"' in page and 'value="b"' in page
    assert 'aria-invalid="true"' not in page


def test_link_with_start_flow_starts_at_once(
    client: TestClient, system: System
) -> None:
    response = client.get(
        "/interactive-flows/order-report?customer=ACME&items=5&express=yes"
        "&colour=red&start_flow=true",
        follow_redirects=False,
    )

    assert response.status_code == 303
    run = only_run(system, "order-report")
    assert response.headers["location"] == f"/runs/{run.id}"
    assert run.trigger == "link"
    # The unknown `colour` is ignored; nothing else is lost.
    assert run.inputs == {"customer": "ACME", "items": 5, "express": True}


def test_link_with_start_flow_is_refused_without_link_click(
    client: TestClient, system: System
) -> None:
    response = client.get("/interactive-flows/careful?customer=ACME&start_flow=true")

    assert response.status_code == 200
    assert count_runs(system) == 0
    assert 'value="ACME"' in response.text
    assert "starts only when you press Start Flow" in response.text


def test_link_with_start_flow_and_bad_data_shows_the_errors(
    client: TestClient, system: System
) -> None:
    response = client.get("/interactive-flows/order-report?items=0&start_flow=true")

    assert response.status_code == 200
    assert count_runs(system) == 0
    assert 'value="0"' in response.text
    assert response.text.count('aria-invalid="true"') == 2  # customer and items


def test_prefill_link_reports_wrong_values_but_not_missing_ones(
    client: TestClient,
) -> None:
    plain = client.get("/interactive-flows/order-report?items=3").text
    wrong = client.get("/interactive-flows/order-report?items=five").text

    assert 'aria-invalid="true"' not in plain
    assert wrong.count('aria-invalid="true"') == 1
    assert 'value="five"' in wrong


def test_signed_out_link_comes_back_after_sign_in(
    client: TestClient, system: System
) -> None:
    link = (
        "/interactive-flows/order-report?customer=ACME%20GmbH&items=2&start_flow=true"
    )
    client.cookies.clear()

    to_login = client.get(link, follow_redirects=False)
    assert to_login.status_code == 303
    next_url = to_login.headers["location"].removeprefix("/login?next=")

    signed_in = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": "alice",
            "password": PASSWORD,
            "next": unquote(next_url),
        },
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == link

    started = client.get(signed_in.headers["location"], follow_redirects=False)
    assert started.status_code == 303
    assert only_run(system, "order-report").inputs["customer"] == "ACME GmbH"


# Past runs


def _add_runs(system: System, username: str, count: int) -> list[str]:
    with system.db.transaction() as session:
        user = session.scalar(select(User).where(User.username == username))
        runs = [
            create_run(
                session, "order-report", {"customer": f"C{n}"}, "form", user=user
            )
            for n in range(count)
        ]
        return [run.id for run in runs]


def test_past_runs_shows_own_runs_newest_first_in_pages(
    client: TestClient, system: System
) -> None:
    own = _add_runs(system, "alice", 27)
    others = _add_runs(system, "fiona", 2)

    first = client.get("/interactive-flows/order-report/runs")
    shown = re.findall(r'href="/runs/([0-9a-f]+)"', first.text)
    assert len(shown) == 25
    assert not set(shown) & set(others)
    assert "Queued" in first.text and "form" in first.text

    older = re.search(
        r'href="(/interactive-flows/order-report/runs\?cursor=[^"]+)"', first.text
    )
    assert older is not None, "no Older runs link"
    second = client.get(older.group(1).replace("&amp;", "&"))
    rest = re.findall(r'href="/runs/([0-9a-f]+)"', second.text)

    assert len(rest) == 2
    assert set(shown) | set(rest) == set(own)
    assert "Older runs" not in second.text


def test_past_runs_shows_everyone_to_developers(
    client: TestClient, system: System
) -> None:
    _add_runs(system, "alice", 1)
    _add_runs(system, "fiona", 1)
    sign_in(client, "admin")

    page = client.get("/interactive-flows/order-report/runs").text

    assert len(re.findall(r'href="/runs/[0-9a-f]+"', page)) == 2
    assert "fiona" in page and "alice" in page


def test_past_runs_are_linked_from_the_run_they_started(
    client: TestClient, system: System
) -> None:
    response = client.get(
        "/interactive-flows/order-report?customer=ACME&start_flow=true",
        follow_redirects=False,
    )
    run_id = run_id_of(response.headers["location"])

    page = client.get("/interactive-flows/order-report/runs").text

    assert f'href="/runs/{run_id}"' in page
    assert "link" in page


async def test_run_started_redirect_begins_the_run_after_sending() -> None:
    happened: list[str] = []

    async def send(message: Message) -> None:
        happened.append(message["type"])

    redirect = RunStartedRedirect("/runs/r1", lambda: happened.append("begin"))
    await redirect({"type": "http"}, _no_body, send)

    assert happened == ["http.response.start", "http.response.body", "begin"]
    assert redirect.status_code == 303


async def test_run_started_redirect_begins_the_run_when_sending_fails() -> None:
    begun: list[bool] = []

    async def send(_message: Message) -> None:
        raise OSError("the client went away")

    redirect = RunStartedRedirect("/runs/r1", lambda: begun.append(True))
    with pytest.raises(OSError):
        await redirect({"type": "http"}, _no_body, send)

    assert begun == [True]


async def _no_body() -> Message:
    return {"type": "http.disconnect"}

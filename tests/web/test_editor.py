"""The flow developers' pages over HTTP: all flows, the editor, its live checks,
Flow Settings, versions, test runs and deleting, with their access rules."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowdesk.flows.definition import (
    definition_from_data,
    dump_definition,
    parse_definition,
)
from flowdesk.flows.service import apply_definition, current_version
from flowdesk.runs.service import create_run
from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.routes import editor
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    count_runs,
    csrf_token,
    only_run,
    run_id_of,
    sign_in,
    wait_until_finished,
)
from tests.support.stored_flows import apply_flow

ORDER_REPORT = """
    # Comments are kept when the text is saved in the editor.
    id: order-report
    name: Order report
    location: Sales/Reports
    tags: [sales, weekly]
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [customer]
        properties:
          customer: {type: string, title: Customer name}
      allowed_triggers: [link_click]
      link_sharing: true
    steps:
      - status: Counting
      - html: "<p>{{ inputs.customer }}</p>"
"""

NIGHTLY = """
    id: nightly-sync
    name: Nightly sync
    schedule:
      cron: "0 2 * * *"
    steps:
      - log: Synced
"""

VALID_TEXT = """\
id: order-report
name: Order report
location: Sales/Reports
interactive:
  enabled: true
  input_schema:
    type: object
    properties:
      customer: {type: string, title: Customer name}
steps:
  - name: Greet
    log: Hello
  - if: "{{ true }}"
    then:
      - html: "<p>done</p>"
"""

EDITOR_PAGES = [
    "/flows",
    "/flows/order-report",
    "/flows/order-report/settings",
    "/flows/order-report/versions",
    "/flows/order-report/versions/1",
    "/flows/order-report/test-run",
    "/flows/order-report/delete",
]

# Every state-changing or checking POST, with a body that would be accepted.
EDITOR_POSTS = [
    ("/flows", {"flow_id": "new-one"}),
    ("/flows/order-report", {"source": VALID_TEXT}),
    ("/flows/order-report/settings", {"name": "Renamed", "input_schema": "true"}),
    ("/flows/order-report/versions/1/restore", {}),
    ("/flows/order-report/test-run", {"customer": "ACME"}),
    ("/flows/order-report/delete", {}),
]
# What the editor's script sends, so that errors come back as JSON.
JSON = {"accept": "application/json"}
EDITOR_JSON_POSTS = [
    ("/flows/order-report/validate", {"text": VALID_TEXT}),
    ("/flows/-/schema-preview", {"text": '{"type": "object"}'}),
    ("/flows/-/schedule-preview", {"cron": "0 7 * * *", "timezone": "UTC"}),
]


@pytest.fixture
def client(system: System, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    cheap_password_hashing(monkeypatch)
    apply_flow(system, ORDER_REPORT)
    apply_flow(system, NIGHTLY)
    add_user(system, "dev", ("flow:run", "flow:edit"), ("finance",))
    add_user(system, "alice")
    with TestClient(create_app(system)) as test_client:
        sign_in(test_client, "dev")
        yield test_client


def token_of(client: TestClient, url: str = "/flows/order-report") -> str:
    return csrf_token(client.get(url).text)


def post_json(
    client: TestClient, url: str, body: dict[str, str], token: str | None = None
) -> dict[str, object]:
    response = client.post(
        url, json=body, headers={**JSON, "x-csrf-token": token or token_of(client)}
    )
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def settings_fields(
    client: TestClient, flow_id: str = "order-report"
) -> dict[str, str]:
    """The settings form's fields as the browser would post them unchanged."""
    page = client.get(f"/flows/{flow_id}/settings").text
    fields = {"_csrf": csrf_token(page)}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None or name.group(1) == "_csrf":
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                fields[name.group(1)] = "true"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = html.unescape(value.group(1) if value else "")
    for name, text in re.findall(
        r'<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S
    ):
        fields[name] = html.unescape(text)
    for name, options in re.findall(
        r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S
    ):
        # The selected option, else the first, as a browser posts it.
        found = re.search(r'<option value="([^"]+)" selected>', options) or (
            re.search(r'<option value="([^"]+)"', options)
        )
        fields[name] = found.group(1) if found else ""
    return fields


def stored_source(system: System, flow_id: str = "order-report") -> str:
    with system.db.reading() as session:
        return current_version(session, flow_id).source


def version_number(system: System, flow_id: str = "order-report") -> int:
    with system.db.reading() as session:
        return current_version(session, flow_id).number


# Access


@pytest.mark.parametrize("url", EDITOR_PAGES)
def test_editor_pages_need_the_flow_edit_scope(client: TestClient, url: str) -> None:
    sign_in(client, "alice")

    response = client.get(url)

    assert response.status_code == 403
    assert "This page needs the &#39;flow:edit&#39; scope" in response.text


@pytest.mark.parametrize(("url", "body"), EDITOR_POSTS)
def test_editor_posts_need_the_flow_edit_scope(
    client: TestClient, system: System, url: str, body: dict[str, str]
) -> None:
    sign_in(client, "alice")
    token = csrf_token(client.get("/interactive-flows").text)

    response = client.post(url, data={"_csrf": token, **body})

    assert response.status_code == 403
    assert "flow:edit" in response.text
    assert version_number(system) == 1


@pytest.mark.parametrize(("url", "body"), EDITOR_JSON_POSTS)
def test_live_checks_need_the_flow_edit_scope(
    client: TestClient, url: str, body: dict[str, str]
) -> None:
    sign_in(client, "alice")
    token = csrf_token(client.get("/interactive-flows").text)

    response = client.post(url, json=body, headers={**JSON, "x-csrf-token": token})

    assert response.status_code == 403
    assert response.json()["missing_scope"] == "flow:edit"


@pytest.mark.parametrize(("url", "body"), EDITOR_POSTS)
def test_editor_posts_without_the_csrf_token_are_refused(
    client: TestClient, system: System, url: str, body: dict[str, str]
) -> None:
    response = client.post(url, data=body)

    assert response.status_code == 403
    assert "expired" in response.text
    assert version_number(system) == 1 and count_runs(system) == 0


@pytest.mark.parametrize(("url", "body"), EDITOR_JSON_POSTS)
def test_live_checks_without_the_csrf_token_are_refused(
    client: TestClient, url: str, body: dict[str, str]
) -> None:
    response = client.post(url, json=body, headers={**JSON, "x-csrf-token": "forged"})

    assert response.status_code == 403
    assert "expired" in response.json()["error"]


def test_editor_posts_from_another_site_are_refused(client: TestClient) -> None:
    response = client.post(
        "/flows/order-report",
        data={"_csrf": token_of(client), "source": VALID_TEXT},
        headers={"origin": "https://elsewhere.example"},
    )

    assert response.status_code == 403


def test_signed_out_editor_visit_comes_back_after_sign_in(client: TestClient) -> None:
    client.cookies.clear()

    response = client.get("/flows/order-report?x=1", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fflows%2Forder-report%3Fx%3D1"


# All flows


def test_flows_page_groups_flows_with_badges_and_last_run(
    client: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        run = create_run(session, "order-report", {"customer": "A"}, "api")
        run.state = "failed"

    page = client.get("/flows").text

    folders = re.findall(
        r'<h2 id="folder-\d+" class="folder-title">(.*?)</h2>', page, re.S
    )
    assert ["Top level" in folders[0], "Sales/Reports" in folders[1]] == [True, True]
    row = page[page.index('data-flow-id="order-report"') :]
    row = row[: row.index("</tr>")]
    assert (
        'href="/flows/order-report"' in row and '<span class="tag">weekly</span>' in row
    )
    assert "Interactive</span>" in row and "Failed" in row
    nightly = page[page.index('data-flow-id="nightly-sync"') :]
    assert "Scheduled</span>" in nightly[: nightly.index("</tr>")]
    assert "Never run" in nightly[: nightly.index("</tr>")]


def test_flows_page_filter_narrows_the_list(client: TestClient) -> None:
    page = client.get("/flows", params={"q": "weekly"}).text

    assert "Order report" in page and "Nightly sync" not in page
    assert 'value="weekly"' in page


def test_new_flow_creates_it_from_the_template(
    client: TestClient, system: System
) -> None:
    response = client.post(
        "/flows",
        data={"_csrf": token_of(client, "/flows"), "flow_id": "weekly-sync"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/flows/weekly-sync?created=1"
    page = client.get(response.headers["location"]).text
    assert "The flow was created" in page and "<h1>Weekly sync</h1>" in page
    with system.db.reading() as session:
        assert current_version(session, "weekly-sync").author == "dev"


def test_new_flow_refuses_an_id_in_use_with_a_message(client: TestClient) -> None:
    response = client.post(
        "/flows",
        data={"_csrf": token_of(client, "/flows"), "flow_id": "order-report"},
    )

    assert response.status_code == 422
    assert "A flow with the id &#39;order-report&#39; already exists" in response.text
    assert 'value="order-report"' in response.text


# The editor


def test_editor_shows_the_source_outline_and_recent_runs(
    client: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        create_run(session, "order-report", {"customer": "A"}, "api")

    page = client.get("/flows/order-report").text

    source = re.search(r'<textarea id="source"[^>]*>(.*?)</textarea>', page, re.S)
    assert source is not None
    assert "# Comments are kept" in html.unescape(source.group(1))
    assert '<span class="step-kind step-kind-status">status</span>' in page
    assert re.search(
        r"<button [^>]*data-open-settings[^>]*>Flow Settings</button>", page
    )
    assert page.count('class="recent-run"') == 1


def test_editor_loads_the_bundle_and_dialog_when_built(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "editor.js").write_text("// built")
    monkeypatch.setattr(editor, "DIST", tmp_path)

    page = client.get("/flows/order-report").text

    assert re.search(
        r'<script type="module" src="/static/dist/editor.js\?v=\d+">', page
    )
    assert "<dialog" in page and 'role="tablist"' in page


def test_editor_without_the_bundle_is_a_plain_form(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(editor, "DIST", tmp_path / "missing")

    page = client.get("/flows/order-report").text

    assert "/static/dist/" not in page and "<dialog" not in page
    assert '<form method="get" action="/flows/order-report/settings"' in page
    assert '<textarea id="source" name="source"' in page


def test_save_valid_text_makes_a_new_version(
    client: TestClient, system: System
) -> None:
    response = client.post(
        "/flows/order-report",
        data={"_csrf": token_of(client), "source": VALID_TEXT.replace("\n", "\r\n")},
        follow_redirects=False,
    )

    assert response.headers["location"] == "/flows/order-report?saved=2"
    assert stored_source(system) == VALID_TEXT
    page = client.get(response.headers["location"]).text
    assert "Saved as version 2." in page and "Version 2, saved by dev" in page


def test_save_invalid_text_is_refused_with_its_messages(
    client: TestClient, system: System
) -> None:
    text = VALID_TEXT.replace("    log: Hello", "    lg: Hello")

    response = client.post(
        "/flows/order-report", data={"_csrf": token_of(client), "source": text}
    )

    assert response.status_code == 422
    assert "The definition was not saved" in response.text
    assert 'data-line="12">Line 12</a>' in response.text
    assert "Unknown step kind &#39;lg&#39;" in response.text
    assert "lg: Hello" in response.text  # the typed text comes back
    assert version_number(system) == 1


def test_save_with_another_flows_id_says_so(client: TestClient, system: System) -> None:
    text = VALID_TEXT.replace("id: order-report", "id: order-copy")

    response = client.post(
        "/flows/order-report", data={"_csrf": token_of(client), "source": text}
    )

    assert response.status_code == 422
    assert "does not match this flow&#39;s id &#39;order-report&#39;" in response.text
    assert version_number(system) == 1


def test_unknown_flow_is_not_found(client: TestClient) -> None:
    assert client.get("/flows/no-such-flow").status_code == 404


# Live checks


def test_validate_returns_problems_with_their_lines(client: TestClient) -> None:
    text = VALID_TEXT.replace('  - if: "{{ true }}"', '  - if: "{{ true "')

    result = post_json(client, "/flows/order-report/validate", {"text": text})

    assert result["valid"] is False
    problems = result["problems"]
    assert isinstance(problems, list)
    assert problems[0]["line"] == 13 and problems[0]["path"] == "steps[1]"


def test_validate_returns_the_outline_of_valid_text(client: TestClient) -> None:
    result = post_json(client, "/flows/order-report/validate", {"text": VALID_TEXT})

    assert result["valid"] is True and result["problems"] == []
    outline = str(result["outline_html"])
    assert '<span class="step-name">Greet</span>' in outline
    assert '<span class="branch-key">then</span>' in outline


def test_schema_preview_reports_json_syntax_with_line_and_column(
    client: TestClient,
) -> None:
    result = post_json(client, "/flows/-/schema-preview", {"text": '{\n  "type": }'})

    assert result["valid"] is False and result["preview_html"] is None
    assert result["problems"] == [
        {
            "message": "the text is not valid JSON: Expecting value at line 2, "
            "column 11",
            "line": 2,
            "column": 11,
            "path": "",
        }
    ]


def test_schema_preview_reports_an_invalid_schema(client: TestClient) -> None:
    result = post_json(client, "/flows/-/schema-preview", {"text": '{"type": "strin"}'})

    assert result["valid"] is False
    assert "did you mean 'string'" in str(result["problems"])


def test_schema_preview_renders_the_launch_form(client: TestClient) -> None:
    schema = (
        '{"type": "object", "properties": {"n": {"type": "integer", "title": "N"}}}'
    )

    result = post_json(client, "/flows/-/schema-preview", {"text": schema})

    assert result["valid"] is True
    assert '<label for="field-n">N</label>' in str(result["preview_html"])


def test_schedule_preview_lists_five_fire_times(client: TestClient) -> None:
    result = post_json(
        client,
        "/flows/-/schedule-preview",
        {"cron": "0 7 * * 1-5", "timezone": "Europe/Berlin"},
    )

    times = result["times"]
    assert result["problem"] is None and isinstance(times, list) and len(times) == 5
    assert all(time["text"].endswith(("07:00 CET", "07:00 CEST")) for time in times)


def test_schedule_preview_explains_a_bad_timezone(client: TestClient) -> None:
    result = post_json(
        client, "/flows/-/schedule-preview", {"cron": "0 7 * * *", "timezone": "Mars"}
    )

    assert result["times"] == [] and "Mars" in str(result["problem"])


# Flow Settings


def test_settings_page_carries_the_names_of_the_interface(client: TestClient) -> None:
    page = client.get("/flows/order-report/settings").text

    for tab in ("General", "Schedule", "Interactive"):
        assert re.search(rf'role="tab"[^>]*>{tab}</button>', page, re.S)
    assert page.count('role="tabpanel"') == 3
    assert re.search(
        r'<input id="settings-interactive-enabled" name="interactive_enabled" '
        r'type="checkbox" role="switch" value="true" checked',
        page,
    )
    assert (
        '<label for="settings-interactive-enabled">Enable Interactive Mode</label>'
        in page
    )
    assert 'for="settings-input-schema">Input Schema</label>' in page
    assert "<legend>Allowed Triggers</legend>" in page
    assert '<label for="settings-link-click">Link Click</label>' in page
    assert '<label for="settings-link-sharing">Link Sharing</label>' in page
    assert "Known groups: finance." in page
    assert '<label for="field-customer">Customer name' in page  # the preview


def test_settings_saved_unchanged_make_no_version(
    client: TestClient, system: System
) -> None:
    response = client.post(
        "/flows/order-report/settings",
        data=settings_fields(client),
        follow_redirects=False,
    )

    assert response.headers["location"] == "/flows/order-report?unchanged=1"
    assert version_number(system) == 1


def test_settings_round_trip_through_export_and_apply(
    client: TestClient, system: System
) -> None:
    fields = settings_fields(client)
    fields.update(
        name="Order summary",
        cron="15 6 * * 1",
        timezone="Europe/Berlin",
        schedule_enabled="true",
        schedule_inputs='{"customer": "ACME"}',
        groups="finance",
    )
    fields.pop("link_click")

    response = client.post(
        "/flows/order-report/settings", data=fields, follow_redirects=False
    )

    assert response.headers["location"] == "/flows/order-report?settings=2"
    with system.db.reading() as session:
        version = current_version(session, "order-report")
    exported = dump_definition(definition_from_data(version.definition))
    definition = parse_definition(exported, "export.yaml")
    with system.db.transaction() as session:
        assert apply_definition(session, definition, exported).change == "unchanged"
    assert definition.name == "Order summary"
    assert definition.schedule is not None
    assert definition.schedule.inputs == {"customer": "ACME"}
    assert definition.interactive.allowed_triggers == ()
    assert definition.interactive.groups == ("finance",)
    assert definition.steps == parse_definition(stored_source(system)).steps


def test_settings_disabling_interactive_mode_hides_the_flow_from_users(
    client: TestClient, system: System
) -> None:
    fields = settings_fields(client)
    fields.pop("interactive_enabled")

    client.post("/flows/order-report/settings", data=fields)

    sign_in(client, "alice")
    assert "Order report" not in client.get("/interactive-flows").text
    assert client.get("/interactive-flows/order-report").status_code == 404


def test_settings_with_an_invalid_schema_are_refused_with_the_values_kept(
    client: TestClient, system: System
) -> None:
    fields = settings_fields(client)
    fields.update(name="Typed name", input_schema='{"type": "strin"}')

    response = client.post("/flows/order-report/settings", data=fields)

    assert response.status_code == 422
    assert "The settings were not saved" in response.text
    assert "did you mean &#39;string&#39;" in response.text
    assert 'value="Typed name"' in response.text
    assert version_number(system) == 1


def test_settings_with_a_json_syntax_error_name_line_and_column(
    client: TestClient,
) -> None:
    fields = settings_fields(client)
    fields["input_schema"] = '{\n  "type": "object",\n}'

    response = client.post("/flows/order-report/settings", data=fields)

    assert response.status_code == 422
    assert "at line 3, column 1" in response.text


def test_settings_change_wakes_the_scheduler(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[bool] = []
    scheduler = client.app.state.scheduler  # type: ignore[attr-defined]
    monkeypatch.setattr(scheduler, "wake", lambda: woken.append(True))
    fields = settings_fields(client, "nightly-sync")
    fields["cron"] = "0 3 * * *"

    client.post("/flows/nightly-sync/settings", data=fields)

    assert woken == [True]


# Versions


def test_versions_diff_and_restore(client: TestClient, system: System) -> None:
    original = stored_source(system)
    client.post(
        "/flows/order-report", data={"_csrf": token_of(client), "source": VALID_TEXT}
    )

    history = client.get("/flows/order-report/versions").text
    assert "Version 2" in history and "Current" in history
    assert 'href="/flows/order-report/versions/1"' in history

    diff = client.get("/flows/order-report/versions/1").text
    assert '<tr class="diff-removed">' in diff and '<tr class="diff-added">' in diff
    assert (
        "<code># Comments are kept when the text is saved in the editor.</code>" in diff
    )

    response = client.post(
        "/flows/order-report/versions/1/restore",
        data={"_csrf": csrf_token(diff)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/flows/order-report?restored=3"
    assert stored_source(system) == original
    assert version_number(system) == 3


def test_unknown_version_is_not_found(client: TestClient) -> None:
    response = client.get("/flows/order-report/versions/9")

    assert response.status_code == 404
    assert "has no version 9" in response.text


# Test runs and deleting


def test_test_run_starts_a_run_from_the_users_form(
    client: TestClient, system: System
) -> None:
    form = client.get("/flows/order-report/test-run").text
    assert '<label for="field-customer">Customer name' in form

    response = client.post(
        "/flows/order-report/test-run",
        data={"_csrf": csrf_token(form), "customer": "ACME"},
        follow_redirects=False,
    )

    run = only_run(system, "order-report")
    assert run_id_of(response.headers["location"]) == run.id
    assert (run.trigger, run.inputs) == ("api", {"customer": "ACME"})


def test_test_run_with_invalid_input_shows_the_form_again(
    client: TestClient, system: System
) -> None:
    response = client.post(
        "/flows/order-report/test-run",
        data={"_csrf": token_of(client), "customer": ""},
    )

    assert response.status_code == 422
    assert "There is a problem" in response.text
    assert count_runs(system) == 0


def test_delete_hides_the_flow_and_keeps_its_runs(
    client: TestClient, system: System
) -> None:
    form = client.get("/flows/order-report/test-run").text
    started = client.post(
        "/flows/order-report/test-run",
        data={"_csrf": csrf_token(form), "customer": "ACME"},
        follow_redirects=False,
    )
    run_url = started.headers["location"]
    wait_until_finished(system, run_id_of(run_url))
    confirm = client.get("/flows/order-report/delete").text
    assert "Its 1 run stays readable" in confirm

    response = client.post(
        "/flows/order-report/delete",
        data={"_csrf": csrf_token(confirm)},
        follow_redirects=False,
    )

    assert response.headers["location"] == "/flows?deleted=order-report"
    assert "Order report" not in client.get("/flows").text.split("</details>", 1)[1]
    assert client.get("/flows/order-report").status_code == 404
    assert client.get(run_url).status_code == 200


# Schema changes


def test_schema_change_keeps_old_runs_and_moves_the_form_on(
    client: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        old_run = create_run(session, "order-report", {"customer": "ACME"}, "api")
    fields = settings_fields(client)
    fields["input_schema"] = (
        '{"type": "object", "required": ["client"], '
        '"properties": {"client": {"type": "string", "title": "Client"}}}'
    )

    client.post("/flows/order-report/settings", data=fields)

    run_page = client.get(f"/runs/{old_run.id}").text
    assert "Customer name" in run_page and "ACME" in run_page
    sign_in(client, "alice")
    launch = client.get("/interactive-flows/order-report?customer=ACME").text
    assert '<label for="field-client">Client' in launch
    assert "field-customer" not in launch
    started = client.get(
        "/interactive-flows/order-report?customer=ACME&start_flow=true",
        follow_redirects=False,
    )
    assert started.status_code == 200  # the old link no longer fills the form
    assert count_runs(system) == 1


def test_settings_page_offers_the_retry_of_interrupted_runs(
    client: TestClient, system: System
) -> None:
    fields = {**settings_fields(client), "retry_interrupted": "1"}

    response = client.post(
        "/flows/order-report/settings", data=fields, follow_redirects=False
    )

    assert response.status_code == 303
    assert "retry_interrupted: 1\n" in stored_source(system)
    page = client.get("/flows/order-report/settings").text
    assert '<option value="1" selected>Start it again, once</option>' in page

"""The `http` step against a real HTTP API on loopback: answers, failures,
timeouts, retries, the size limit, request bodies, connections and masking."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from flowdesk.engine import Limits, compile_flow
from flowdesk.engine.connections import Authentication, Connection
from flowdesk.engine.steps.http import close_shared_client
from flowdesk.errors import DefinitionError, StepFailed
from tests.support.http_api import ApiServer, serve_api

if TYPE_CHECKING:
    from tests.engine.conftest import RecordingReporter, RunFlow

FAST_RETRIES = Limits(http_retry_delay_seconds=0.01)
TOKEN = "tok-3f9a-very-secret"


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServer]:
    with serve_api() as server:
        yield server


@pytest.fixture(autouse=True)
async def _close_client() -> AsyncIterator[None]:
    # Each test has its own event loop, and with it its own pooled client.
    yield
    await close_shared_client()


def logs(reporter: RecordingReporter) -> list[str]:
    return [message for message, _step in reporter.of("log")]


# Answers


async def test_http_get_saves_status_headers_and_json_body(
    run_flow: RunFlow, api: ApiServer, reporter: RecordingReporter
) -> None:
    result = await run_flow([{"http": f"{api.url}/json", "save_as": "answer"}])

    answer = result.outputs["answer"]
    assert answer["status"] == 200
    assert answer["body"] == {"hello": "world"}
    assert answer["headers"]["content-type"] == "application/json"
    assert logs(reporter)[0].startswith(f"GET {api.url}/json answered 200 OK in ")


async def test_http_text_answer_is_text(run_flow: RunFlow, api: ApiServer) -> None:
    result = await run_flow([{"http": f"{api.url}/text", "save_as": "answer"}])

    assert result.outputs["answer"]["body"] == "just text"


async def test_http_broken_json_is_kept_as_text_with_a_warning(
    run_flow: RunFlow, api: ApiServer, reporter: RecordingReporter
) -> None:
    result = await run_flow([{"http": f"{api.url}/bad-json", "save_as": "answer"}])

    assert result.outputs["answer"]["body"] == "{not json"
    assert any(
        "said its answer is JSON, but it is not" in line for line in logs(reporter)
    )


async def test_http_head_has_an_empty_body(run_flow: RunFlow, api: ApiServer) -> None:
    result = await run_flow(
        [{"http": f"{api.url}/json", "method": "head", "save_as": "answer"}]
    )

    assert result.outputs["answer"]["status"] == 200
    assert result.outputs["answer"]["body"] is None


# Failures


@pytest.mark.parametrize("status", [404, 500])
async def test_http_error_status_fails_naming_method_url_and_status(
    run_flow: RunFlow, api: ApiServer, status: int
) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow([{"log": "first"}, {"http": f"{api.url}/status/{status}"}])

    assert failure.value.path == "steps[1]"
    assert failure.value.reason.startswith(
        f"GET {api.url}/status/{status} answered {status} "
    )
    assert f"status {status}" in failure.value.reason  # a piece of the body


async def test_http_allow_status_hands_the_answer_to_the_flow(
    run_flow: RunFlow, api: ApiServer
) -> None:
    result = await run_flow(
        [
            {
                "http": f"{api.url}/status/404",
                "allow_status": [404],
                "save_as": "answer",
            },
            {"set": {"found": "{{ answer.status != 404 }}"}},
        ]
    )

    assert result.outputs["found"] is False
    assert result.outputs["answer"]["body"] == {"error": "status 404"}


async def test_http_timeout_fails_clearly(run_flow: RunFlow, api: ApiServer) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow([{"http": f"{api.url}/slow?seconds=2", "timeout": 0.2}])

    assert failure.value.reason == (
        f"GET {api.url}/slow?seconds=2 did not answer within 0.2 s"
    )


async def test_http_connection_refused_fails_clearly(run_flow: RunFlow) -> None:
    with pytest.raises(
        StepFailed, match=r"GET http://127\.0\.0\.1:9/ could not connect"
    ):
        await run_flow([{"http": "http://127.0.0.1:9/"}])


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"http": "/x", "json": {}, "body": "y"}, "sends one body"),
        ({"http": "/x", "method": "FETCH"}, "'method' must be one of"),
        ({"http": "/x", "method": "POST", "retries": 2}, "a repeated POST"),
        ({"http": "/x", "retries": 11}, "'retries' must be a whole number"),
        ({"http": "/x", "allow_status": ["404"]}, "'allow_status' must be a list"),
        ({"http": "/x", "save_as": "a-b"}, "'save_as' must be a variable name"),
    ],
)
def test_http_definition_errors(step: dict[str, Any], problem: str) -> None:
    with pytest.raises(DefinitionError, match=problem):
        compile_flow([step])


async def test_http_url_must_be_http_or_https(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed, match="must start with http:// or https://"):
        await run_flow([{"http": "ftp://example.com/file"}])


# Retries


async def test_http_retries_until_the_api_answers(
    run_flow: RunFlow, api: ApiServer, reporter: RecordingReporter
) -> None:
    result = await run_flow(
        [{"http": f"{api.url}/flaky/twice?fails=2", "retries": 3, "save_as": "a"}],
        limits=FAST_RETRIES,
    )

    assert result.outputs["a"]["body"] == {"attempts": 3}
    assert api.attempts["twice"] == 3
    retries = [line for line in logs(reporter) if "trying again" in line]
    assert len(retries) == 2


async def test_http_retries_a_dropped_connection(
    run_flow: RunFlow, api: ApiServer
) -> None:
    result = await run_flow(
        [
            {
                "http": f"{api.url}/flaky/dropped?fails=1&how=drop",
                "retries": 2,
                "save_as": "a",
            }
        ],
        limits=FAST_RETRIES,
    )

    assert result.outputs["a"]["body"] == {"attempts": 2}


async def test_http_retries_give_up_after_the_last_attempt(
    run_flow: RunFlow, api: ApiServer
) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [{"http": f"{api.url}/flaky/never?fails=9", "retries": 2}],
            limits=FAST_RETRIES,
        )

    assert api.attempts["never"] == 3
    assert "answered 503" in failure.value.reason


async def test_http_without_retries_tries_once(
    run_flow: RunFlow, api: ApiServer
) -> None:
    with pytest.raises(StepFailed):
        await run_flow([{"http": f"{api.url}/flaky/once?fails=1"}])

    assert api.attempts["once"] == 1


async def test_http_post_is_not_retried_even_when_asked(
    run_flow: RunFlow, api: ApiServer
) -> None:
    # A method from an expression cannot be refused when the flow is loaded.
    with pytest.raises(StepFailed):
        await run_flow(
            [
                {
                    "http": f"{api.url}/flaky/post?fails=1",
                    "method": "{{ 'POST' }}",
                    "retries": 3,
                }
            ],
            limits=FAST_RETRIES,
        )

    assert api.attempts["post"] == 1


# The size limit


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
async def test_http_answer_over_the_size_limit_is_refused(
    run_flow: RunFlow, api: ApiServer, chunked: bool
) -> None:
    url = f"{api.url}/big?bytes={5 * 1024 * 1024}" + ("&chunked=1" if chunked else "")

    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [{"http": url, "save_as": "a"}],
            limits=Limits(http_max_response_bytes=1024 * 1024),
        )

    assert "is larger than the limit of 1 MB" in failure.value.reason


async def test_http_answer_under_the_size_limit_is_read(
    run_flow: RunFlow, api: ApiServer
) -> None:
    result = await run_flow(
        [
            {"http": f"{api.url}/big?bytes=5000&chunked=1", "save_as": "a"},
            {"set": {"size": "{{ a.body | length }}"}},
        ],
        outputs=["size"],
    )

    assert result.outputs == {"size": 5000}


# What a request sends


async def test_http_sends_query_and_headers(run_flow: RunFlow, api: ApiServer) -> None:
    await run_flow(
        [
            {
                "http": f"{api.url}/echo?fixed=1",
                "query": {"page": "{{ 1 + 1 }}", "tag": ["a", "b"], "skip": None},
                "headers": {"X-Who": "flowdesk", "Accept": "application/json"},
            }
        ]
    )

    seen = api.last()
    assert seen["query"] == {"fixed": ["1"], "page": ["2"], "tag": ["a", "b"]}
    assert seen["headers"]["x-who"] == "flowdesk"
    assert seen["headers"]["user-agent"].startswith("flowdesk/")


async def test_http_sends_json(run_flow: RunFlow, api: ApiServer) -> None:
    await run_flow(
        [
            {
                "http": f"{api.url}/echo",
                "method": "POST",
                "json": {"items": "{{ [1, 2] }}", "who": "Ada"},
            }
        ]
    )

    seen = api.last()
    assert seen["method"] == "POST"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"] == '{"items": [1, 2], "who": "Ada"}'


async def test_http_sends_a_form(run_flow: RunFlow, api: ApiServer) -> None:
    await run_flow(
        [
            {
                "http": f"{api.url}/echo",
                "method": "PUT",
                "form": {"name": "Ada Lovelace", "admin": True},
            }
        ]
    )

    seen = api.last()
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert seen["body"] == "name=Ada+Lovelace&admin=true"


async def test_http_sends_a_text_body(run_flow: RunFlow, api: ApiServer) -> None:
    await run_flow(
        [
            {
                "http": f"{api.url}/echo",
                "method": "PATCH",
                "body": "line for {{ inputs.who }}",
                "headers": {"Content-Type": "text/csv"},
            }
        ],
        {"who": "Bo"},
    )

    seen = api.last()
    assert seen["body"] == "line for Bo"
    assert seen["headers"]["content-type"] == "text/csv"


# Connections and secrets


def connection(api: ApiServer, auth: Authentication | None) -> dict[str, Connection]:
    return {
        "shop": Connection(
            "shop", f"{api.url}/api/v1", {"Accept": "application/json"}, auth
        )
    }


async def test_http_connection_joins_base_url_and_sends_bearer_token(
    run_flow: RunFlow, api: ApiServer, reporter: RecordingReporter
) -> None:
    result = await run_flow(
        [
            {"http": "orders", "connection": "shop", "save_as": "answer"},
            {"log": "sent {{ answer.body.headers.authorization }}"},
        ],
        connections=connection(api, Authentication("bearer", "SHOP_TOKEN")),
        secrets={"SHOP_TOKEN": TOKEN},
    )

    seen = api.last()
    assert seen["path"] == "/api/v1/orders"
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert seen["headers"]["accept"] == "application/json"
    # What the API echoed back is masked wherever it leaves the engine.
    assert "sent Bearer ***" in logs(reporter)
    assert TOKEN not in str(result.outputs)
    assert "Bearer ***" in str(result.outputs)


async def test_http_connection_sends_basic_auth(
    run_flow: RunFlow, api: ApiServer
) -> None:
    await run_flow(
        [{"http": "/me", "connection": "shop"}],
        connections=connection(
            api, Authentication("basic", "SHOP_PASSWORD", username="ada")
        ),
        secrets={"SHOP_PASSWORD": "pa ss:word"},
    )

    expected = base64.b64encode(b"ada:pa ss:word").decode()
    assert api.last()["headers"]["authorization"] == f"Basic {expected}"


async def test_http_connection_sends_api_key_in_a_header(
    run_flow: RunFlow, api: ApiServer
) -> None:
    await run_flow(
        [{"http": "/items", "connection": "shop"}],
        connections=connection(
            api, Authentication("api_key", "KEY", location="header", param_name="X-Key")
        ),
        secrets={"KEY": TOKEN},
    )

    assert api.last()["headers"]["x-key"] == TOKEN


async def test_http_connection_api_key_in_query_is_masked_in_the_log(
    run_flow: RunFlow, api: ApiServer, reporter: RecordingReporter
) -> None:
    key = "k3y/with+odd=chars"

    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [{"http": "/nowhere", "connection": "shop"}],
            connections={
                "shop": Connection(
                    "shop",
                    api.url,
                    auth=Authentication(
                        "api_key", "KEY", location="query", param_name="api_key"
                    ),
                )
            },
            secrets={"KEY": key},
        )

    assert api.last()["query"] == {"api_key": [key]}
    assert f"GET {api.url}/nowhere?api_key=*** answered 404" in logs(reporter)[0]
    assert key not in str(failure.value)
    assert "api_key=***" in failure.value.reason


async def test_http_connection_refuses_another_site(
    run_flow: RunFlow, api: ApiServer
) -> None:
    with pytest.raises(StepFailed, match="is not on the site of the connection 'shop'"):
        await run_flow(
            [{"http": "http://other.example/steal", "connection": "shop"}],
            connections=connection(api, Authentication("bearer", "T")),
            secrets={"T": TOKEN},
        )


async def test_http_unknown_connection_fails_naming_it(
    run_flow: RunFlow, api: ApiServer
) -> None:
    with pytest.raises(
        StepFailed, match="no connection named 'shopp' \\(known: shop\\)"
    ):
        await run_flow(
            [{"http": "/x", "connection": "shopp"}], connections=connection(api, None)
        )


async def test_http_connection_without_its_secret_fails(
    run_flow: RunFlow, api: ApiServer
) -> None:
    with pytest.raises(
        StepFailed, match="needs the secret 'SHOP_TOKEN', which is not set"
    ):
        await run_flow(
            [{"http": "/x", "connection": "shop"}],
            connections=connection(api, Authentication("bearer", "SHOP_TOKEN")),
        )


async def test_http_secret_header_reaches_the_api_and_only_the_api(
    run_flow: RunFlow, api: ApiServer, reporter: RecordingReporter
) -> None:
    result = await run_flow(
        [
            {
                "http": f"{api.url}/echo?key={{{{ secrets.KEY }}}}",
                "headers": {"X-Api-Key": "{{ secrets.KEY }}"},
                "save_as": "echo",
            },
            {"log": "{{ echo.body.headers['x-api-key'] }}"},
            {"status": "key {{ echo.body.query.key[0] }}"},
        ],
        secrets={"KEY": TOKEN},
    )

    assert api.last()["headers"]["x-api-key"] == TOKEN
    everything = str(reporter.events) + str(result.outputs)
    assert TOKEN not in everything
    assert "***" in logs(reporter)
    assert ("key ***", None) in reporter.of("status")

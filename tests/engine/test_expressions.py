"""Expressions as flows see them: native values, text, errors and the sandbox."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowdesk.engine.expressions import (
    TEMPLATE_GLOBALS,
    compile_html,
    compile_text,
    compile_value,
)
from flowdesk.errors import StepFailed


def evaluate(raw: Any, **names: Any) -> Any:
    return compile_value(raw, "steps[0]").evaluate({**TEMPLATE_GLOBALS, **names})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ [3, 7, 2, 9] }}", [3, 7, 2, 9], id="list"),
        pytest.param("{{ inputs.items * 2 }}", 10, id="int"),
        pytest.param("{{ inputs.express }}", False, id="bool"),
        pytest.param("  {{ inputs.price }}\n", 9.5, id="blank-around"),
        pytest.param("{{ {'a': inputs.items} }}", {"a": 5}, id="dict"),
        pytest.param("{{ none }}", None, id="none"),
        pytest.param("{{ '}}{{' }}", "}}{{", id="braces-in-string"),
    ],
)
def test_expression_native_type_kept(source: str, expected: Any) -> None:
    inputs = {"items": 5, "express": False, "price": 9.5}

    assert evaluate(source, inputs=inputs) == expected
    assert type(evaluate(source, inputs=inputs)) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ n }} items", "5 items", id="text-after"),
        pytest.param("{{ n }}{{ n }}", "55", id="two-expressions"),
        pytest.param("{% if n %}yes{% endif %}", "yes", id="statement"),
        pytest.param("plain", "plain", id="no-template"),
    ],
)
def test_expression_mixed_string_renders_text(source: str, expected: str) -> None:
    assert evaluate(source, n=5) == expected


def test_expression_nested_values_rendered_recursively() -> None:
    raw = {"total": "{{ n * 2 }}", "tags": ["a", "{{ n }}", "n={{ n }}"], "fixed": 1}

    assert evaluate(raw, n=4) == {"total": 8, "tags": ["a", 4, "n=4"], "fixed": 1}


def test_expression_dict_key_wins_over_method() -> None:
    # The flow file example reads `inputs.items`, which Jinja alone would take
    # for the dict's items() method.
    assert evaluate("{{ inputs.items + 1 }}", inputs={"items": 2}) == 3
    assert evaluate("{{ inputs.items() | list }}", inputs={"a": 1}) == [("a", 1)]


@pytest.mark.parametrize(
    "source",
    ["{{ totl * 2 }}", "{{ totl }}", "total: {{ totl }}", "{{ [1, totl] }}"],
)
def test_expression_missing_name_fails_naming_it(source: str) -> None:
    with pytest.raises(StepFailed) as failure:
        compile_value(source, "steps[3]").evaluate({"total": 1})

    assert failure.value.path == "steps[3]"
    assert "'totl' is undefined" in failure.value.reason
    assert source in str(failure.value)


def test_expression_missing_attribute_fails() -> None:
    with pytest.raises(StepFailed, match="no attribute 'custmer'"):
        evaluate("{{ inputs.custmer }}", inputs={"customer": "ACME"})


def test_expression_runtime_error_names_expression() -> None:
    with pytest.raises(StepFailed, match=r'division by zero in "\{\{ 1 / n \}\}"'):
        evaluate("{{ 1 / n }}", n=0)


def test_expression_text_field_never_native() -> None:
    assert compile_text("{{ [1, 2] }}", "steps[0]").evaluate({}) == "[1, 2]"
    assert compile_text(42, "steps[0]").evaluate({}) == "42"


def test_expression_html_escapes_values() -> None:
    html = compile_html("<p>{{ name }}</p>", "steps[0]")

    assert html.evaluate({"name": "<script>x</script>"}) == (
        "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    )


def test_expression_text_does_not_escape() -> None:
    text = compile_text("Hello {{ name }}", "steps[0]")

    assert text.evaluate({"name": "<b>Ann</b>"}) == "Hello <b>Ann</b>"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{{ ''.__class__ }}", id="class"),
        pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", id="subclasses"),
        pytest.param("{{ cycler.__init__.__globals__ }}", id="globals"),
        pytest.param("{{ self._TemplateReference__context }}", id="self-context"),
        pytest.param("{{ self.__init__.__globals__ }}", id="self-globals"),
        pytest.param("{{ namespace.__init__ }}", id="namespace-init"),
        pytest.param("{{ [].append(1) }}", id="mutation"),
        pytest.param("{{ ''.format.__self__ }}", id="format-self"),
        pytest.param("{{ '{0.__class__}'.format(1) }}", id="format-attribute"),
        pytest.param("{{ lipsum(5) }}", id="lipsum"),
    ],
)
def test_expression_sandbox_escape_refused(source: str) -> None:
    with pytest.raises(StepFailed) as failure:
        evaluate(source)

    assert failure.value.path == "steps[0]"
    reason = failure.value.reason
    assert any(word in reason for word in ("unsafe", "undefined", "no attribute"))


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{{ range(10**9) | list }}", id="range"),
        pytest.param("{{ 'a' * 10**10 }}", id="repeat-text"),
        pytest.param("{{ [0] * 10**10 }}", id="repeat-list"),
        pytest.param("{{ 10 ** (10 ** 10) }}", id="power"),
        pytest.param("{{ (10 ** 20000) * (10 ** 20000) }}", id="huge-product"),
        pytest.param("{{ '%0999999999d' % 1 }}", id="printf-width"),
        pytest.param("{{ '%*d' % (999999999, 1) }}", id="printf-star"),
        pytest.param("{{ '{:>999999999}'.format(1) }}", id="format-width"),
        pytest.param("{{ 'a'.center(10**9) }}", id="center-method"),
        pytest.param("{{ 'a' | center(10**9) }}", id="center-filter"),
        pytest.param("{{ 'a' | indent(10**9) }}", id="indent-filter"),
        pytest.param("{{ [1] | batch(10**9, 0) | list }}", id="batch-filter"),
        pytest.param("{{ [1] | slice(10**9) | list }}", id="slice-filter"),
        pytest.param("{{ (1).to_bytes(10**9, 'big') }}", id="to-bytes"),
        pytest.param("{{ ('a' * 10**6).replace('a', 'bbbbbbbbbbbb') }}", id="replace"),
        pytest.param("{{ range(100000) | join('x' * 1000) }}", id="join-filter"),
        pytest.param("{{ ('x' * 1000).join(range(100000)|map('string')) }}", id="join"),
        pytest.param(
            "{% for i in range(100000) %}{% for j in range(100000) %}"
            "{% endfor %}{% endfor %}",
            id="nested-loops",
        ),
        pytest.param(
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
            "{% endmacro %}{{ f(40) }}",
            id="macro-bomb",
        ),
        pytest.param(
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            id="concat-doubling",
        ),
        pytest.param(
            "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}"
            "{% set ns.s = [ns.s, ns.s] %}{% endfor %}{{ ns.s }}",
            id="shared-list-printed",
        ),
        pytest.param(
            "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
            id="output-size",
        ),
    ],
)
def test_expression_huge_result_refused(source: str) -> None:
    started = time.monotonic()

    with pytest.raises(StepFailed) as failure:
        evaluate(source)

    assert failure.value.path == "steps[0]"
    assert time.monotonic() - started < 5


def test_expression_left_associative_power_is_allowed() -> None:
    # Jinja reads `10 ** 10 ** 10` as (10 ** 10) ** 10: large, but only 333 bits.
    assert evaluate("{{ 10 ** 10 ** 10 }}") == 10**100


def test_expression_reasonable_sizes_pass() -> None:
    assert len(evaluate("{{ 'ab' * 1000 }}")) == 2000
    assert evaluate("{{ range(5) | join(', ') }}") == "0, 1, 2, 3, 4"
    assert evaluate("{{ '%05.1f' % 3.14159 }}") == "003.1"
    rendered = evaluate("{% for i in range(1000) %}{{ i }},{% endfor %}")
    assert rendered.count(",") == 1000


@pytest.mark.parametrize(
    "source",
    [
        "{% block b %}x{% endblock %}",
        "{% include 'other.html' %}",
        "{% extends 'base.html' %}",
        "{% import 'macros.html' as m %}",
    ],
)
def test_expression_template_composition_refused(source: str) -> None:
    from jinja2 import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="not available in flow templates"):
        compile_value(source, "steps[0]")

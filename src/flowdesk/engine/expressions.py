"""Flow expressions: sandboxed Jinja2 templates, compiled once per flow version.

A string that is exactly one ``{{ ... }}`` evaluates to the expression's own value
(a list stays a list); any other string is rendered as text. Everything runs in an
immutable sandbox, and because a flow author must not be able to stall or exhaust
the process with one expression, the sandbox here adds guards of its own:

- ``*``, ``**``, ``+``, ``%`` and ``~`` refuse results beyond `SIZE_LIMIT` items or
  characters (or `INT_BITS_LIMIT` bits);
- loop iterations and calls inside one evaluation are counted (`OPERATION_LIMIT`);
- str methods and filters taking a width or count refuse huge ones;
- containers are measured before they are turned into text, since a list that
  holds itself twice, nested forty times, is tiny in memory and endless as text;
- ``{% block %}``, ``{% include %}`` and the like are refused: flow templates stand
  alone.
"""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from flowdesk.errors import StepFailed

SIZE_LIMIT = 10_000_000
"""Most characters of a string, or items of a structure, one expression may build."""

INT_BITS_LIMIT = 100_000  # about 30,000 decimal digits
NESTING_LIMIT = 200  # levels of lists and dicts inside one another

OPERATION_LIMIT = 1_000_000  # work units within one evaluation
_ITERATION_COST = 1
# A call (a macro, a method) does far more work than a loop iteration: with the
# same weight, a macro calling itself twice would keep the process busy for
# seconds before the limit stopped it.
_CALL_COST = 10

_SNIPPET_LENGTH = 80
_SCALAR_TYPES = frozenset({int, float, bool, type(None)})
_CONTAINER_TYPES = (list, tuple, dict)

# Filters that never turn their input into text; every other filter may, so its
# input is measured first.
_STRUCTURAL_FILTERS = frozenset(
    {
        "abs", "attr", "batch", "count", "d", "default", "dictsort", "first",
        "float", "groupby", "int", "items", "last", "length", "list", "map", "max",
        "min", "random", "reject", "rejectattr", "reverse", "round", "select",
        "selectattr", "slice", "sort", "sum", "unique",
    }
)  # fmt: skip

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class InputValues(dict[str, Any]):
    """Run inputs as expressions see them. A property the input schema declares
    but the user left empty reads as None, so `{% if inputs.express %}` works
    for an optional checkbox; a name the schema does not know stays an error."""

    __slots__ = ("declared",)

    def __init__(self, data: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
        super().__init__(
            (key, _wrap_declared(value, declared.get(key)))
            for key, value in data.items()
        )
        self.declared = declared

    def declares(self, name: Any) -> bool:
        return name not in self and name in self.declared


def _wrap_declared(value: Any, declared: Any) -> Any:
    if isinstance(value, dict) and isinstance(declared, Mapping):
        return InputValues(value, declared)
    return value


class Value(ABC):
    """A step field compiled once; `evaluate` gives its value for one run's names."""

    __slots__ = ()

    @abstractmethod
    def evaluate(self, names: dict[str, Any]) -> Any: ...


class Literal(Value):
    """A field with no template in it: its value is fixed."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, names: dict[str, Any]) -> Any:
        return self.value


class Expression(Value):
    """``{{ ... }}`` alone in a string: evaluates to the expression's native value."""

    __slots__ = ("_check_items", "_source", "_template", "_where")

    def __init__(
        self, template: Template, source: str, where: str, literal: bool
    ) -> None:
        self._template = template
        self._source = source
        self._where = where
        # A list or dict written in the expression may hold a misspelt name; its
        # items are few (they are in the source), so they are checked right away.
        self._check_items = literal

    def evaluate(self, names: dict[str, Any]) -> Any:
        template = self._template
        try:
            context = _new_context(template, names)
            for _ in template.root_render_func(context):
                pass
            result = context.vars["result"]
            if isinstance(result, Undefined):
                _raise_undefined(result)
            if self._check_items:
                _reject_undefined_items(result)
        except Exception as error:
            raise _failure(self._where, self._source, error) from error
        return result


class Text(Value):
    """Any other string with a template in it: renders to text."""

    __slots__ = ("_source", "_template", "_where")

    def __init__(self, template: Template, source: str, where: str) -> None:
        self._template = template
        self._source = source
        self._where = where

    def evaluate(self, names: dict[str, Any]) -> str:
        template = self._template
        try:
            context = _new_context(template, names)
            return _join_bounded(template.root_render_func(context))
        except Exception as error:
            raise _failure(self._where, self._source, error) from error


class ListValue(Value):
    """A list whose items hold templates."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Value]) -> None:
        self._items = tuple(items)

    def evaluate(self, names: dict[str, Any]) -> list[Any]:
        return [item.evaluate(names) for item in self._items]


class DictValue(Value):
    """A mapping whose values hold templates; keys are taken as written."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[Any, Value]) -> None:
        self._items = tuple(items.items())

    def evaluate(self, names: dict[str, Any]) -> dict[Any, Any]:
        return {key: value.evaluate(names) for key, value in self._items}


def compile_value(raw: Any, where: str) -> Value:
    """Compile a field whose value keeps its type: lists and dicts recursively.

    `where` is the step path, used in the messages of the `StepFailed` that
    evaluating raises. A syntax error raises `TemplateSyntaxError`.
    """
    if isinstance(raw, str):
        return _compile_string(raw, where, _TEXT_ENVIRONMENT, native=True)

    if isinstance(raw, list):
        items = [compile_value(item, where) for item in raw]
        if all(isinstance(item, Literal) for item in items):
            return Literal(raw)
        return ListValue(items)

    if isinstance(raw, dict):
        values = {key: compile_value(value, where) for key, value in raw.items()}
        if all(isinstance(value, Literal) for value in values.values()):
            return Literal(raw)
        return DictValue(values)

    return Literal(raw)


def compile_text(raw: Any, where: str) -> Value:
    """Compile a field that is always text (a log line, a status message)."""
    return _compile_string(_as_text(raw), where, _TEXT_ENVIRONMENT, native=False)


def compile_html(raw: Any, where: str) -> Value:
    """Compile an HTML template: inserted values are escaped unless marked safe."""
    return _compile_string(_as_text(raw), where, _HTML_ENVIRONMENT, native=False)


def measure(value: Any) -> int:
    """Return the size of `value` as text would see it: items plus characters.

    A part held twice counts twice. Raises `SecurityError` beyond `SIZE_LIMIT`
    or `NESTING_LIMIT` levels, and `UndefinedError` at an undefined value.
    """
    return _Measurer().size(value, 0)


def _compile_string(
    source: str, where: str, environment: _GuardedEnvironment, *, native: bool
) -> Value:
    # Without a brace there is no template; most log lines and names are like this.
    if "{" not in source:
        return Literal(source)

    parsed = environment.parse(source)
    expression = _single_expression(parsed) if native else None
    if expression is None:
        return Text(environment.from_string(parsed), source, where)

    body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
    template = environment.from_string(nodes.Template(body, lineno=1))
    literal = isinstance(expression, nodes.List | nodes.Tuple | nodes.Dict)
    return Expression(template, source, where, literal)


def _single_expression(parsed: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is one ``{{ ... }}`` and blank text."""
    if len(parsed.body) != 1 or not isinstance(parsed.body[0], nodes.Output):
        return None

    found: nodes.Expr | None = None
    for node in parsed.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            if node.data.strip():
                return None
        elif found is None:
            found = node
        else:
            return None
    return found


def _new_context(template: Template, names: dict[str, Any]) -> Context:
    # Template.new_context(names, shared=True) would do the same, but it also
    # copies the key set of the template's globals, which nothing here reads and
    # which costs more than the rest of a simple expression.
    return _CountingContext(template.environment, names, template.name, {})


def _as_text(raw: Any) -> str:
    return raw if isinstance(raw, str) else str(raw)


def _failure(where: str, source: str, error: Exception) -> StepFailed:
    detail = (str(error) or type(error).__name__).rstrip(".")
    snippet = " ".join(source.split())
    if len(snippet) > _SNIPPET_LENGTH:
        snippet = snippet[: _SNIPPET_LENGTH - 3] + "..."
    return StepFailed(where, f'{detail} in "{snippet}"')


def _raise_undefined(value: Undefined) -> None:
    # A StrictUndefined raises its own message ("'totl' is undefined") when used.
    str(value)
    raise UndefinedError("the expression has no value")


def _reject_undefined_items(result: Any) -> None:
    items = result.values() if isinstance(result, dict) else result
    for item in items:
        if isinstance(item, Undefined):
            _raise_undefined(item)


class _Measurer:
    """Computes `measure`. Sizes of containers already seen are remembered by
    identity, so a part held many times is counted each time but walked once."""

    def __init__(self) -> None:
        self._sizes: dict[int, int] = {}

    def size(self, value: Any, depth: int) -> int:
        if type(value) in _SCALAR_TYPES:
            return 1
        if isinstance(value, str | bytes):
            return self._bounded(len(value))
        if isinstance(value, Undefined):
            _raise_undefined(value)
        if not isinstance(value, list | tuple | dict):
            return 1

        known = self._sizes.get(id(value))
        if known is not None:
            return known
        if depth >= NESTING_LIMIT:
            raise SecurityError(
                f"the value is nested more than {NESTING_LIMIT} levels deep"
            )
        size = self._bounded(self._items_size(value, depth))
        self._sizes[id(value)] = size
        return size

    def _items_size(
        self, container: list[Any] | tuple[Any, ...] | dict[Any, Any], depth: int
    ) -> int:
        items: Iterable[Any] = container
        size = 1 + len(container)
        if isinstance(container, dict):
            items = container.values()
            size += sum(len(key) for key in container if type(key) is str)

        # Long flat lists are common (rows, ids); count them at C speed.
        kinds = set(map(type, items))
        if kinds <= _SCALAR_TYPES:
            return size
        if kinds == {str}:
            return size + sum(map(len, items))

        for item in items:
            size = self._bounded(size + self.size(item, depth + 1))
        return size

    @staticmethod
    def _bounded(size: int) -> int:
        if size > SIZE_LIMIT:
            raise SecurityError(
                f"the value is too large: more than {SIZE_LIMIT} items and characters"
            )
        return size


def _check_length(result: Any) -> Any:
    if isinstance(result, str | bytes | list | tuple) and len(result) > SIZE_LIMIT:
        raise SecurityError(
            f"the result would hold {len(result)} items or characters;"
            f" the limit is {SIZE_LIMIT}"
        )
    return result


def _check_count(what: str, count: Any, limit: int = SIZE_LIMIT) -> None:
    if isinstance(count, int) and abs(count) > limit:
        raise SecurityError(f"{what} {count} is too large; the limit is {limit}")


def _join_bounded(pieces: Iterable[str]) -> str:
    """Join rendered pieces, stopping as soon as the text grows past the limit."""
    collected = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > SIZE_LIMIT:
            raise SecurityError(
                f"the rendered text would exceed {SIZE_LIMIT} characters"
            )
        collected.append(piece)
    return "".join(collected)


def _printable(value: Any) -> Any:
    """Measure a container before the template turns it into text."""
    if isinstance(value, _CONTAINER_TYPES):
        measure(value)
    return value


def _check_printf(template: str, arguments: Any) -> None:
    for width, precision in _PRINTF_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise SecurityError("'*' widths are not allowed in '%' formatting")
            if number:
                _check_count("the width", int(number))
    _printable(arguments)


def _check_str_format(template: str) -> None:
    for _text, _field, spec, _conversion in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError("nested fields are not allowed in a format spec")
        for number in _DIGITS.findall(spec):
            _check_count("the width", int(number))


def _check_repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > INT_BITS_LIMIT:
            raise SecurityError(
                f"the product would have more than {INT_BITS_LIMIT} bits"
            )
        return

    for sequence, count in ((left, right), (right, left)):
        if not isinstance(count, int) or count <= 0:
            continue
        if isinstance(sequence, str | bytes):
            size = len(sequence)
        elif isinstance(sequence, list | tuple):
            size = measure(sequence)
        else:
            continue
        if size * count > SIZE_LIMIT:
            raise SecurityError(
                f"repeating a {type(sequence).__name__} of size {size} {count} times"
                f" would exceed the limit of {SIZE_LIMIT} items or characters"
            )


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)):
        return
    if exponent > 0 and abs(base) > 1 and base.bit_length() * exponent > INT_BITS_LIMIT:
        raise SecurityError(
            f"{base} ** {exponent} would have more than {INT_BITS_LIMIT} bits"
        )


def _check_str_method(
    owner: str | bytes | int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse str, bytes and int method calls that would build a huge result.

    Returns the arguments to call with: `join` reads its iterable here first.
    """
    for argument in (*args, *kwargs.values()):
        _check_count("the argument", argument)

    if name == "join" and args and isinstance(owner, str | bytes):
        items = list(args[0])
        size = len(owner) * max(len(items) - 1, 0)
        size += sum(measure(item) for item in items)
        _check_count("the joined text's length", size)
        return (items, *args[1:])

    if name == "replace" and isinstance(owner, str) and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            hits = owner.count(old) if old else len(owner) + 1
            limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
            if isinstance(limit, int) and limit >= 0:
                hits = min(hits, limit)
            _check_count("the replaced text's length", len(owner) + hits * len(new))

    return args


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a built-in filter so that it measures its input and bounds its output."""
    # Filters marked pass_context and the like receive that argument first.
    value_index = 0 if getattr(function, "jinja_pass_arg", None) is None else 1
    measures_input = name not in _STRUCTURAL_FILTERS
    check_arguments = _FILTER_ARGUMENT_CHECKS.get(name)

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if measures_input and len(args) > value_index:
            _printable(args[value_index])
        if check_arguments is not None:
            check_arguments(args[value_index:], kwargs)
        return _check_length(function(*args, **kwargs))

    return guarded


def _argument(
    args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str
) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _check_width_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _check_count("the width", _argument(args, kwargs, 1, "width"))


def _check_batch_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _check_count("the batch size", _argument(args, kwargs, 1, "linecount"))


def _check_slice_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # slice builds one list per slice, so it gets the smaller limit of range().
    _check_count("the number of slices", _argument(args, kwargs, 1, "slices"), 100_000)


def _check_tojson_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    indent = _argument(args, kwargs, 1, "indent")
    _check_count("the indent", indent, 100)
    if isinstance(indent, str):
        _check_count("the indent's length", len(indent), 100)


def _check_format_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if args and isinstance(args[0], str):
        _check_printf(args[0], (*args[1:], *kwargs.values()))


def _check_join_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    separator = _argument(args, kwargs, 1, "d") or ""
    if args and isinstance(args[0], Sized) and isinstance(separator, str):
        size = len(separator) * max(len(args[0]) - 1, 0)
        _check_count("the joined text's length", size)


def _check_replace_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text, old, new = (
        _argument(args, kwargs, index, name)
        for index, name in enumerate(("s", "old", "new"))
    )
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        _check_count("the replaced text's length", len(text) + hits * len(new))


def _check_wordwrap_filter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = _argument(args, kwargs, 0, "s")
    width = _argument(args, kwargs, 1, "width") or 79
    wrapstring = _argument(args, kwargs, 3, "wrapstring") or "\n"
    if isinstance(text, str) and isinstance(width, int) and isinstance(wrapstring, str):
        lines = len(text) // max(width, 1) + 1
        _check_count("the wrapped text's length", len(text) + lines * len(wrapstring))


_FILTER_ARGUMENT_CHECKS: dict[
    str, Callable[[tuple[Any, ...], dict[str, Any]], None]
] = {
    "batch": _check_batch_filter,
    "center": _check_width_filter,
    "format": _check_format_filter,
    "indent": _check_width_filter,
    "join": _check_join_filter,
    "replace": _check_replace_filter,
    "slice": _check_slice_filter,
    "tojson": _check_tojson_filter,
    "wordwrap": _check_wordwrap_filter,
}


class _CountingContext(Context):
    """A render context that counts what the template does against a budget."""

    # A class default: each context's first `spend` makes it its own attribute.
    operations_left = OPERATION_LIMIT

    def spend(self, cost: int) -> None:
        self.operations_left -= cost
        if self.operations_left < 0:
            raise SecurityError(
                "the template does too much work: loop iterations and calls"
                f" beyond the limit of {OPERATION_LIMIT} units"
            )


class _GuardNodes(NodeTransformer):
    """Rewrites a parsed template so that loops and ``~`` go through the guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _environment_call(
            "count_iterations", nodes.ContextReference(), node.iter
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_environment_call("printable", part) for part in node.nodes]
        return _environment_call("check_length", node)

    def visit_Block(self, node: nodes.Block) -> nodes.Node:
        raise _refused("block", node)

    def visit_Extends(self, node: nodes.Extends) -> nodes.Node:
        raise _refused("extends", node)

    def visit_Include(self, node: nodes.Include) -> nodes.Node:
        raise _refused("include", node)

    def visit_Import(self, node: nodes.Import) -> nodes.Node:
        raise _refused("import", node)

    def visit_FromImport(self, node: nodes.FromImport) -> nodes.Node:
        raise _refused("from ... import", node)


def _environment_call(method: str, *args: nodes.Node) -> nodes.Call:
    # EnvironmentAttribute compiles to `environment.<method>`, which a template
    # cannot shadow with a variable of its own.
    return nodes.Call(
        nodes.EnvironmentAttribute(method), list(args), [], None, None, lineno=1
    )


def _refused(tag: str, node: nodes.Node) -> TemplateSyntaxError:
    return TemplateSyntaxError(
        f"'{{% {tag} %}}' is not available in flow templates", node.lineno
    )


class _GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus the size and work limits of this module."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    context_class = _CountingContext

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape, undefined=StrictUndefined, finalize=_printable
        )
        # lipsum(n) writes n paragraphs with no bound on n, and flows have no use
        # for placeholder text.
        del self.globals["lipsum"]
        self.filters = {
            name: _guard_filter(name, function)
            for name, function in self.filters.items()
        }

    # `concat` joins block and macro output; `check_length` and `printable` are
    # reached from rewritten templates (see _GuardNodes).
    concat = staticmethod(_join_bounded)
    check_length = staticmethod(_check_length)
    printable = staticmethod(_printable)

    def count_iterations(
        self, context: Context, iterable: Iterable[Any]
    ) -> Iterator[Any]:
        assert isinstance(context, _CountingContext)
        for item in iterable:
            context.spend(_ITERATION_COST)
            yield item

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Flow data is JSON, so `inputs.items` must be the input named "items",
        # not the dict method Jinja would otherwise prefer.
        if isinstance(obj, dict | Mapping) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, InputValues) and obj.declares(attribute):
            return None
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, InputValues) and obj.declares(argument):
            return None
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)

        result = self.binop_table[operator](left, right)
        return _check_length(result) if operator == "+" else result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        assert isinstance(context, _CountingContext)
        context.spend(_CALL_COST)

        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str | bytes | int):
            args = _check_str_method(owner, getattr(obj, "__name__", ""), args, kwargs)
        return _check_length(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None

        _check_str_format(value.__self__)

        @wraps(formatter)
        def bounded(*args: Any, **kwargs: Any) -> str:
            for argument in (*args, *kwargs.values()):
                _printable(argument)
            text = formatter(*args, **kwargs)
            _check_length(text)
            return text

        return bounded

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        # The documented hook between parsing and code generation.
        guarded = _GuardNodes().visit(source)
        guarded.set_environment(self)
        return super()._generate(guarded, name, filename, defer_init)


_TEXT_ENVIRONMENT = _GuardedEnvironment(autoescape=False)
_HTML_ENVIRONMENT = _GuardedEnvironment(autoescape=True)

TEMPLATE_GLOBALS: dict[str, Any] = dict(_TEXT_ENVIRONMENT.globals)
"""Names every template sees besides the flow context (`range`, `dict`, ...).

Evaluation hands the flow context to Jinja as is, without copying it per
expression, so a run's names must start with these.
"""

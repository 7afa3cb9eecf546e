"""Limits on what a request may carry: the body limit (pure ASGI, so that an
oversized body is refused before any of it is buffered, parsed or even read),
and the one way every posted form is read, within flowdesk's limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypedDict

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowdesk.errors import FlowdeskError
from flowdesk.inputs import MAX_PARAMS

# A launch form may carry as many fields as a link has parameters, plus the
# few of its own (_csrf, _action); no form takes files.
MAX_FORM_FIELDS = MAX_PARAMS + 10
MAX_FIELD_BYTES = 1024 * 1024
# The fixed forms (sign-in, account, administration) have a handful of fields.
SMALL_FORM_FIELDS = 50


class FormLimits(TypedDict, total=False):
    max_files: int
    max_fields: int
    max_part_size: int


# The same limits for FastAPI's own parsing of `Form()` parameters, so that a
# route written that way cannot fall back to Starlette's defaults.
FORM_LIMITS: FormLimits = {
    "max_files": 0,
    "max_fields": MAX_FORM_FIELDS,
    "max_part_size": MAX_FIELD_BYTES,
}


class FormTooLarge(FlowdeskError):
    http_status = 413


def too_large_message(max_bytes: int) -> str:
    return (
        f"The request is larger than the {max_bytes:,} bytes flowdesk accepts. "
        "Send less data, or ask your administrator to raise "
        "FLOWDESK_MAX_REQUEST_BYTES."
    )


async def read_form(request: Request) -> FormData:
    """The posted form within flowdesk's limits: 413 for too many or too large
    fields, 400 for files and unreadable bodies, each said in words. Starlette
    keeps the first reading of a request's form, so read it here first."""
    try:
        return await request.form(**FORM_LIMITS)
    except HTTPException as error:
        cause = error.__context__
        if isinstance(cause, MultiPartException):
            raise _refusal(cause.message) from None
        raise


def _refusal(message: str) -> FlowdeskError:
    if message.startswith("Too many fields"):
        return FormTooLarge(
            f"The form has more than the {MAX_FORM_FIELDS:,} fields flowdesk "
            "accepts. Send fewer fields."
        )
    if message.startswith(("Field exceeded", "Part exceeded")):
        return FormTooLarge(
            f"A field of the form is larger than the {MAX_FIELD_BYTES:,} bytes "
            "flowdesk accepts. Send less text."
        )
    if message.startswith("Too many files"):
        return FlowdeskError("This form takes no files; send its fields as text.")
    return FlowdeskError(f"The form could not be read: {message}")


def small_form(
    max_fields: int = SMALL_FORM_FIELDS,
) -> Callable[[Request], Awaitable[FormData]]:
    """A dependency: the posted form of a page with a few fixed fields, refused
    with 413 beyond `max_fields` fields."""

    async def dependency(request: Request) -> FormData:
        form = await read_form(request)
        if len(form.multi_items()) > max_fields:
            raise FormTooLarge(
                f"The form has {len(form.multi_items()):,} fields; this page "
                f"accepts at most {max_fields}."
            )
        return form

    return dependency


def text_field(form: FormData, name: str, max_chars: int, default: str = "") -> str:
    """The text of the field `name` (`default` when missing), refused with 413
    naming the field when longer than `max_chars` characters."""
    value = form.get(name, default)
    if not isinstance(value, str):
        raise FlowdeskError(f"The field {name!r} must be text, not a file.")
    return _within(name, value, max_chars)


def text_fields(
    form: FormData, name: str, max_chars: int, max_values: int
) -> list[str]:
    """Every value of the repeated field `name`, such as checked boxes."""
    values = form.getlist(name)
    if len(values) > max_values:
        raise FormTooLarge(
            f"The field {name!r} was sent {len(values):,} times; this form "
            f"accepts it at most {max_values} times."
        )
    texts = []
    for value in values:
        if not isinstance(value, str):
            raise FlowdeskError(f"The field {name!r} must be text, not a file.")
        texts.append(_within(name, value, max_chars))
    return texts


def _within(name: str, value: str, max_chars: int) -> str:
    if len(value) > max_chars:
        raise FormTooLarge(
            f"The field {name!r} has {len(value):,} characters; flowdesk accepts "
            f"at most {max_chars:,} there."
        )
    return value


class BodyLimit:
    """Answers 413 to a body over `max_bytes`: at once when Content-Length
    says so, and as soon as a body without one grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        if self._declared_length(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Reaches the app's error handlers wherever it reads the
                    # body: the form parser, FastAPI's body fields, a handler.
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                # The server refuses a malformed length before it gets here.
                return int(value) if value.isdigit() else 0
        return 0

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Imported here: the error pages need the templates, which need
        # web.auth, which reads forms through this module.
        from flowdesk.web.errors import error_response

        request = Request(scope, receive)
        # The page goes out without looking up the session: nothing of the
        # request is trusted, and the database is not needed to say no.
        request.state.viewer = None
        response = error_response(request, 413, too_large_message(self.max_bytes))
        await response(scope, receive, send)

"""The request body limit. Pure ASGI, so that an oversized body is refused
before any of it is buffered, parsed or even read."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowdesk.web.errors import error_response


def too_large_message(max_bytes: int) -> str:
    return (
        f"The request is larger than the {max_bytes:,} bytes flowdesk accepts. "
        "Send less data, or ask your administrator to raise "
        "FLOWDESK_MAX_REQUEST_BYTES."
    )


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
        request = Request(scope, receive)
        # The page goes out without looking up the session: nothing of the
        # request is trusted, and the database is not needed to say no.
        request.state.viewer = None
        response = error_response(request, 413, too_large_message(self.max_bytes))
        await response(scope, receive, send)

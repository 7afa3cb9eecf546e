"""Domain exceptions, mapped to HTTP answers in `flowdesk.web.errors` and to exit
codes in `flowdesk.cli.main`.

    FlowdeskError
    ├── ConfigError          settings that cannot work (start-up stops)
    ├── DefinitionError      a flow file or definition is invalid (422)
    ├── InputError           run input fails the flow's input schema (422)
    ├── NotFound             no such flow, run or user, or not visible (404)
    ├── PermissionDenied     signed in but missing a scope (403)
    ├── NotSignedIn          no valid session or token (401 / redirect)
    ├── Conflict             the request clashes with stored state (409)
    └── StepFailed           a step failed while a run executed
"""

from __future__ import annotations

from dataclasses import dataclass


class FlowdeskError(Exception):
    """Base of every error flowdesk raises on purpose."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(FlowdeskError):
    http_status = 500


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow definition, located as precisely as known."""

    message: str
    file: str = "<flow>"
    line: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.path}: {self.message}"
            if self.path
            else (f"{where}: {self.message}")
        )


class DefinitionError(FlowdeskError):
    http_status = 422

    def __init__(self, problems: list[Problem]) -> None:
        assert problems, "a DefinitionError needs at least one problem"
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class FieldError:
    """A validation message for one input field, named by its dotted path."""

    field: str  # "" for the input as a whole, else "address.city", "lines.0.sku"
    message: str


class InputError(FlowdeskError):
    http_status = 422

    def __init__(self, errors: list[FieldError]) -> None:
        assert errors, "an InputError needs at least one field error"
        super().__init__("; ".join(_describe(e) for e in errors))
        self.errors = errors


def _describe(error: FieldError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


class NotFound(FlowdeskError):
    http_status = 404


class PermissionDenied(FlowdeskError):
    http_status = 403

    def __init__(self, scope: str) -> None:
        super().__init__(f"This page needs the '{scope}' scope, which you do not have.")
        self.scope = scope


class NotSignedIn(FlowdeskError):
    http_status = 401

    def __init__(self, message: str = "Please sign in.") -> None:
        super().__init__(message)


class Conflict(FlowdeskError):
    http_status = 409


class StepFailed(FlowdeskError):
    """A step could not complete; `path` names it like `steps[2].then[0]`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message

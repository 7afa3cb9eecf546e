"""Run states, triggers and the plain-language messages users see for them."""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})
UNFINISHED = frozenset({QUEUED, RUNNING})

# `flow`: started by another run's `run_flow` step (the run has a parent_run_id).
TRIGGERS = ("form", "link", "rerun", "schedule", "api", "cli", "flow")
# Triggers only a signed-in user pulls: such a run without a user was started
# by one who has been deleted since.
PERSON_TRIGGERS = frozenset({"form", "link", "rerun", "api"})
DELETED_USER = "deleted user"

DEFAULT_MESSAGES = {
    QUEUED: "The flow is waiting to start...",
    RUNNING: "The flow is currently running...",
    SUCCEEDED: "The flow completed successfully.",
    FAILED: "The flow failed.",
    CANCELLED: "The flow was cancelled.",
}

INTERRUPTED_MESSAGE = (
    "The flow was interrupted because the process running it stopped; "
    "start it again to retry."
)


def interrupted_message(attempts: int) -> str:
    """The error of a run whose process stopped on each of its `attempts`."""
    if attempts <= 1:
        return INTERRUPTED_MESSAGE
    return (
        "The flow was interrupted because the process running it stopped, on "
        f"each of its {attempts} attempts; start it again to retry."
    )


def retry_message(attempt: int, attempts: int) -> str:
    """The status of a run queued again after its process stopped."""
    return (
        "The worker running this flow stopped; starting again "
        f"(attempt {attempt} of {attempts})."
    )

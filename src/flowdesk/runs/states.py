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

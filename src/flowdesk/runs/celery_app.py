"""The Celery application of the distributed mode, configured from Settings.

Web processes and the scheduler only send tasks (`flowdesk.execute_run` with a
run id); `flowdesk worker` registers the task and executes the runs. A task
carries nothing but the id: the run itself, its inputs and its version are in
the database, where the claim decides who executes it.
"""

from __future__ import annotations

from celery import Celery

from flowdesk.settings import Settings

TASK_NAME = "flowdesk.execute_run"
QUEUE = "flowdesk.runs"
# A delivered task not acknowledged this long is delivered again: its worker
# may have died or frozen before the run started. The claim makes a second
# delivery of a run that did start (one simply running longer) a no-op.
VISIBILITY_TIMEOUT_SECONDS = 300
SEND_CONNECT_TIMEOUT_SECONDS = 2.0


def make_celery(settings: Settings, *, sending_only: bool = False) -> Celery:
    """A Celery app on `FLOWDESK_BROKER_URL`. With `sending_only`, a broker that
    does not answer fails a send at once instead of being retried."""
    if not settings.broker_url:
        raise ValueError("the Celery app needs FLOWDESK_BROKER_URL")
    app = Celery("flowdesk", broker=settings.broker_url, set_as_current=False)
    transport_options: dict[str, object] = {
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS
    }
    if sending_only:
        # The caller keeps the run queued in the database and sends it again
        # later; waiting here would only hold up the next run's send.
        transport_options["max_retries"] = 0
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # Acknowledged only when the run has ended, so that a worker lost
        # mid-run leaves its task to be delivered again rather than dropped.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One task per free slot: a run waiting in a busy worker's buffer
        # could have started on an idle one.
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options,
        broker_connection_timeout=SEND_CONNECT_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Runs go on while the broker is away; their end is in the database.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    return app

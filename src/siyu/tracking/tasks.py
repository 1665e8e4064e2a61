"""Task entry points of the tracking app: take ids, call into the app, safe to run twice."""

from django_tasks import task


@task()
def process_pending(workspace_id: int) -> int:
    """Resolve the workspace's pending events to contacts (resolve.py). Enqueued on commit by
    `events_ingest`; a second copy running at the same time returns at once."""
    from siyu.tracking.resolve import process_pending_events

    return process_pending_events(workspace_id)

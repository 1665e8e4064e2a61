"""Reads of the tracking app: write keys of a workspace, and the ingestion lag that
`siyu check` and the console show."""

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from siyu.core.models import Workspace
from siyu.tracking.models import Event, EventStatus, WriteKey


def write_keys(workspace: Workspace) -> QuerySet[WriteKey]:
    """The workspace's write keys, newest first, revoked ones included."""
    return WriteKey.objects.filter(workspace=workspace).order_by("-id")


def get_write_key_by_prefix(workspace: Workspace, prefix: str) -> WriteKey | None:
    return WriteKey.objects.filter(workspace=workspace, prefix=prefix).first()


@dataclass(frozen=True)
class IngestionLag:
    """Events accepted but not processed yet, and how long the oldest has waited."""

    pending: int
    oldest_received_at: datetime.datetime | None

    @property
    def age_seconds(self) -> float:
        if self.oldest_received_at is None:
            return 0.0
        return max((timezone.now() - self.oldest_received_at).total_seconds(), 0.0)

    def __str__(self) -> str:
        if not self.pending:
            return "no pending events"
        return f"{self.pending} pending event(s), oldest {int(self.age_seconds)}s old"


def ingestion_lag(workspace: Workspace | None = None) -> IngestionLag:
    """The lag of one workspace, or of all of them. Each workspace is read through the
    (workspace, status, id) index: a count and one row, never a scan of processed events."""
    if workspace is not None:
        workspace_ids = [workspace.pk]
    else:
        workspace_ids = list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
    pending = 0
    oldest: datetime.datetime | None = None
    for workspace_id in workspace_ids:
        qs = Event.objects.filter(workspace_id=workspace_id, status=EventStatus.PENDING)
        first = qs.order_by("id").values_list("received_at", flat=True).first()
        if first is None:
            continue
        pending += qs.count()
        oldest = first if oldest is None else min(oldest, first)
    return IngestionLag(pending=pending, oldest_received_at=oldest)

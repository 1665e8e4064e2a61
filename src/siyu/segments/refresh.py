"""Scheduled work: every SIYU_SEGMENT_REFRESH_MINUTES the worker recomputes each workspace's
scores (stage, tier, RFM) and then all its dynamic and built-in segments; nightly it refits
the CLV model. A slot is claimed with a conditional UPDATE, so of several workers exactly
one enqueues it."""

import datetime
import logging
import time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from siyu.core import sqlbulk
from siyu.core.models import Workspace
from siyu.segments.actions import builtins_ensure
from siyu.segments.compiler import read_tables
from siyu.segments.membership import refresh_order, refresh_segment
from siyu.segments.models import RefreshSchedule

log = logging.getLogger(__name__)


def refresh_workspace(workspace: Workspace, *, now=None) -> dict:
    """Scores first (built-ins read them), then every rule-based segment, each after the
    segments it uses. A segment that fails is logged and skipped; the others go on."""
    from siyu.segments.scores import scores_refresh

    now = now or timezone.now()
    started = time.perf_counter()
    builtins_ensure(workspace)
    with connection.cursor() as cursor:  # the scores' inputs, after a burst of ingest
        sqlbulk.analyze_stale(cursor, read_tables())
    scores = scores_refresh(workspace, now=now)
    scored_s = time.perf_counter() - started
    refreshed, failed = [], []
    for segment in refresh_order(workspace):
        try:
            counts = refresh_segment(segment, now=now)
            refreshed.append({"id": segment.pk, "name": segment.name, **counts})
        except Exception:  # noqa: BLE001 - one broken segment must not stop the rest
            log.exception("refreshing segment %s failed", segment.pk)
            failed.append(segment.pk)
    result = {
        "at": now.isoformat(),
        "scores": {k: v for k, v in scores.items() if isinstance(v, int | float)},
        "scores_s": round(scored_s, 3),
        "segments": len(refreshed),
        "failed": failed,
        "seconds": round(time.perf_counter() - started, 3),
    }
    RefreshSchedule.objects.update_or_create(
        workspace=workspace,
        defaults={"last_refresh": result},
        create_defaults={"last_refresh": result, "next_clv_at": next_clv_time(workspace, now)},
    )
    return result | {"refreshed": refreshed}


def next_clv_time(workspace: Workspace, now: datetime.datetime) -> datetime.datetime:
    """The next SIYU_CLV_FIT_HOUR o'clock in the workspace's time zone."""
    tz = ZoneInfo(workspace.timezone or "Asia/Shanghai")
    local = now.astimezone(tz)
    at = local.replace(hour=settings.SIYU_CLV_FIT_HOUR, minute=0, second=0, microsecond=0)
    if at <= local:
        at += datetime.timedelta(days=1)
    return at


def claim_due(now=None) -> dict[str, list[int]]:
    """Workspaces whose refresh or CLV fit is due, each claimed by moving its slot forward
    (a conditional UPDATE: of two workers, one wins)."""
    now = now or timezone.now()
    workspaces = {w.pk: w for w in Workspace.objects.all()}
    have = set(RefreshSchedule.objects.values_list("workspace_id", flat=True))
    RefreshSchedule.objects.bulk_create(
        [
            RefreshSchedule(workspace=w, next_refresh_at=now, next_clv_at=next_clv_time(w, now))
            for pk, w in workspaces.items()
            if pk not in have
        ],
        ignore_conflicts=True,
    )
    every = datetime.timedelta(minutes=max(1, settings.SIYU_SEGMENT_REFRESH_MINUTES))
    due: dict[str, list[int]] = {"refresh": [], "clv": []}
    for row in RefreshSchedule.objects.filter(next_refresh_at__lte=now):
        claimed = RefreshSchedule.objects.filter(
            pk=row.pk, next_refresh_at=row.next_refresh_at
        ).update(next_refresh_at=now + every)
        if claimed:
            due["refresh"].append(row.workspace_id)
    for row in RefreshSchedule.objects.filter(next_clv_at__lte=now):
        workspace = workspaces.get(row.workspace_id)
        if workspace is None:
            continue
        claimed = RefreshSchedule.objects.filter(pk=row.pk, next_clv_at=row.next_clv_at).update(
            next_clv_at=next_clv_time(workspace, now)
        )
        if claimed:
            due["clv"].append(row.workspace_id)
    return due


def enqueue_due(now=None) -> dict[str, list[int]]:
    """The worker's housekeeping: enqueue what is due."""
    from siyu.segments.tasks import fit_clv, refresh_segments

    due = claim_due(now)
    for workspace_id in due["refresh"]:
        refresh_segments.enqueue(workspace_id)
    for workspace_id in due["clv"]:
        fit_clv.enqueue(workspace_id)
    return due

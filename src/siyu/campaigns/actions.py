"""Every write to broadcasts: create, edit, send (now, later, recurring), plan a due run,
cancel."""

import datetime
import zoneinfo
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from siyu.campaigns import planner
from siyu.campaigns.cleaning import (
    clean_attribution_days,
    clean_goal,
    clean_name,
    clean_share,
    is_row_id,
)
from siyu.campaigns.models import Broadcast, BroadcastRun, BroadcastStatus, Recurrence
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import Workspace
from siyu.messaging.models import ChannelConfig, MessageTemplate, OutboxMessage, OutboxStatus
from siyu.messaging.scheduling import send_soon
from siyu.segments.models import Segment

EDITABLE = (
    "name",
    "channel_id",
    "template_id",
    "include_segments",
    "exclude_segments",
    "holdout_percent",
    "goal_event",
    "attribution_days",
)


def _clean_segments(workspace: Workspace, ids: Any, field: str) -> list[int]:
    if ids in (None, ""):
        return []
    if not isinstance(ids, list) or not all(is_row_id(i) for i in ids):
        raise ValidationError(field, "expected a list of segment ids")
    found = set(
        Segment.objects.filter(
            workspace=workspace, pk__in=ids, archived_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for position, segment_id in enumerate(ids):
        if segment_id not in found:
            raise ValidationError(f"{field}[{position}]", "no such segment")
    return sorted(set(ids))


def _whole(value: Any, field: str) -> None:
    if not is_row_id(value):
        raise ValidationError(field, "expected an id")


def _clean(workspace: Workspace, values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "name" in values:
        cleaned["name"] = clean_name(values["name"])
    if "channel_id" in values:
        _whole(values["channel_id"], "channel_id")
        channel = ChannelConfig.objects.filter(workspace=workspace, pk=values["channel_id"]).first()
        if channel is None:
            raise ValidationError("channel_id", "no such channel")
        cleaned["channel"] = channel
    if "template_id" in values:
        _whole(values["template_id"], "template_id")
        template = MessageTemplate.objects.filter(
            workspace=workspace, pk=values["template_id"], archived=False
        ).first()
        if template is None:
            raise ValidationError("template_id", "no such template")
        cleaned["template"] = template
    for field in ("include_segments", "exclude_segments"):
        if field in values:
            cleaned[field] = _clean_segments(workspace, values[field], field)
    if "holdout_percent" in values:
        cleaned["holdout_percent"] = clean_share(values["holdout_percent"])
    if "goal_event" in values:
        cleaned["goal_event"] = clean_goal(values["goal_event"], required=True)
    if "attribution_days" in values:
        cleaned["attribution_days"] = clean_attribution_days(values["attribution_days"])
    return cleaned


def _check_pairing(broadcast: Broadcast) -> None:
    if broadcast.template.kind != broadcast.channel.kind:
        raise ValidationError(
            "template_id",
            "a %(kind)s template cannot be sent on this channel",
            {"kind": broadcast.template.kind},
        )
    overlap = set(broadcast.include_segments) & set(broadcast.exclude_segments)
    if overlap:
        raise ValidationError("exclude_segments", "a segment is both included and excluded")


def _snapshot(b: Broadcast) -> dict[str, Any]:
    return {
        "name": b.name,
        "status": b.status,
        "channel": b.channel_id,
        "template": b.template_id,
        "include": b.include_segments,
        "exclude": b.exclude_segments,
        "holdout_percent": str(b.holdout_percent),
        "send_at": b.send_at.isoformat() if b.send_at else None,
        "recurrence": b.recurrence,
        "weekdays": b.weekdays,
    }


def broadcast_create(*, workspace: Workspace, actor: Actor, **values: Any) -> Broadcast:
    """A draft. Needs name, channel_id and template_id; the rest has defaults."""
    for required in ("name", "channel_id", "template_id"):
        if values.get(required) in (None, ""):
            raise ValidationError(required, "this field is required")
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    with transaction.atomic():
        broadcast = Broadcast(
            workspace=workspace, created_by=actor.user, **_clean(workspace, values)
        )
        _check_pairing(broadcast)
        broadcast.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="broadcast.create",
            obj=broadcast,
            after=_snapshot(broadcast),
        )
    return broadcast


def broadcast_update(
    *, workspace: Workspace, actor: Actor, broadcast: Broadcast, **values: Any
) -> Broadcast:
    """Edit a draft or a scheduled broadcast (not one that is going out or done)."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk, workspace=workspace)
        if broadcast.status not in (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED):
            raise Conflict(
                "a broadcast that is %(status)s cannot be edited",
                params={"status": broadcast.status},
            )
        before = _snapshot(broadcast)
        for name, value in _clean(workspace, values).items():
            setattr(broadcast, name, value)
        _check_pairing(broadcast)
        broadcast.updated_at = timezone.now()
        broadcast.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="broadcast.update",
            obj=broadcast,
            before=before,
            after=_snapshot(broadcast),
        )
    return broadcast


def _clean_schedule(
    workspace: Workspace, send_at: Any, recurrence: str, weekdays: Any
) -> tuple[datetime.datetime | None, str, list[int]]:
    if recurrence not in Recurrence.values:
        raise ValidationError("recurrence", "expected daily, weekly or nothing")
    if recurrence and send_at is None:
        raise ValidationError("send_at", "a recurring broadcast needs its first time")
    if send_at is not None:
        if not isinstance(send_at, datetime.datetime) or timezone.is_naive(send_at):
            raise ValidationError("send_at", "expected a date and time with its time zone")
        if send_at < timezone.now() - datetime.timedelta(minutes=1):
            raise ValidationError("send_at", "is in the past")
    days: list[int] = []
    if recurrence == Recurrence.WEEKLY:
        if (
            not isinstance(weekdays, list)
            or not weekdays
            or not all(isinstance(d, int) and 1 <= d <= 7 for d in weekdays)
        ):
            raise ValidationError("weekdays", "expected ISO weekdays 1 (Monday) to 7 (Sunday)")
        days = sorted(set(weekdays))
    return send_at, recurrence, days


def broadcast_send(
    *,
    workspace: Workspace,
    actor: Actor,
    broadcast: Broadcast,
    send_at: datetime.datetime | None = None,
    recurrence: str = "",
    weekdays: Any = None,
) -> Broadcast:
    """Send now (plan the first run at once), or schedule it (the worker plans runs when
    they are due). A double click sends once: only a draft can be sent."""
    send_at, recurrence, days = _clean_schedule(workspace, send_at, recurrence, weekdays)
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk, workspace=workspace)
        if broadcast.status != BroadcastStatus.DRAFT:
            raise Conflict("the broadcast was already sent or scheduled")
        _check_pairing(broadcast)
        if not broadcast.channel.enabled:
            raise ValidationError("channel_id", "the channel is disabled")
        broadcast.send_at, broadcast.recurrence, broadcast.weekdays = send_at, recurrence, days
        broadcast.next_run_at = send_at
        if recurrence == Recurrence.WEEKLY:
            broadcast.next_run_at = next_occurrence(
                broadcast, send_at - datetime.timedelta(seconds=1)
            )
        broadcast.status = BroadcastStatus.SCHEDULED if send_at else BroadcastStatus.SENDING
        broadcast.updated_at = timezone.now()
        broadcast.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="broadcast.send",
            obj=broadcast,
            after=_snapshot(broadcast),
        )
        if send_at is None:
            _plan_next_run(broadcast, timezone.now())
    return broadcast


def _plan_next_run(broadcast: Broadcast, now: datetime.datetime) -> BroadcastRun:
    number = (broadcast.runs.aggregate(n=Max("number"))["n"] or 0) + 1
    run = BroadcastRun.objects.create(
        workspace_id=broadcast.workspace_id, broadcast=broadcast, number=number, planned_at=now
    )
    planner.plan_run(run, now)
    send_soon([broadcast.channel_id])
    return run


def next_occurrence(broadcast: Broadcast, after: datetime.datetime) -> datetime.datetime | None:
    """The next time a recurring broadcast goes out after `after`, at the local time of day of
    its first send, in the workspace's time zone."""
    if not broadcast.recurrence or broadcast.send_at is None:
        return None
    tz = zoneinfo.ZoneInfo(broadcast.workspace.timezone)
    clock = broadcast.send_at.astimezone(tz).timetz().replace(tzinfo=None)
    day = after.astimezone(tz).date()
    for _ in range(15):
        candidate = datetime.datetime.combine(day, clock, tzinfo=tz)
        weekday_ok = (
            broadcast.recurrence == Recurrence.DAILY or candidate.isoweekday() in broadcast.weekdays
        )
        if candidate > after and weekday_ok:
            return candidate.astimezone(datetime.UTC)
        day += datetime.timedelta(days=1)
    return None


def run_due(broadcast_id: int, now: datetime.datetime | None = None) -> BroadcastRun | None:
    """Plan the broadcast's run if it is due and nobody planned it yet (several workers may
    call this at once: the conditional update lets one through)."""
    now = now or timezone.now()
    with transaction.atomic():
        broadcast = (
            Broadcast.objects.select_for_update()
            .select_related("workspace", "channel")
            .filter(pk=broadcast_id, status=BroadcastStatus.SCHEDULED, next_run_at__lte=now)
            .first()
        )
        if broadcast is None:
            return None
        due = broadcast.next_run_at
        following = next_occurrence(broadcast, max(due, now))
        claimed = Broadcast.objects.filter(
            pk=broadcast.pk, status=BroadcastStatus.SCHEDULED, next_run_at=due
        ).update(
            next_run_at=following,
            status=BroadcastStatus.SCHEDULED if following else BroadcastStatus.SENDING,
        )
        if not claimed:
            return None
        try:
            with transaction.atomic():
                return _plan_next_run(broadcast, now)
        except IntegrityError:  # the same run planned twice: nothing more to do
            return None


def broadcast_cancel(*, workspace: Workspace, actor: Actor, broadcast: Broadcast) -> int:
    """Stop it: no further runs, and queued messages are suppressed (`cancelled`); messages
    already handed to the vendor finish. How many queued messages were stopped."""
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk, workspace=workspace)
        if broadcast.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
            raise Conflict(
                "the broadcast is already %(status)s", params={"status": broadcast.status}
            )
        before = _snapshot(broadcast)
        broadcast.status, broadcast.next_run_at = BroadcastStatus.CANCELLED, None
        broadcast.cancelled_at = timezone.now()
        broadcast.save(update_fields=["status", "next_run_at", "cancelled_at"])
        stopped = OutboxMessage.objects.filter(
            workspace=workspace,
            source__startswith=f"broadcast:{broadcast.pk}:",
            status=OutboxStatus.QUEUED,
        ).update(status=OutboxStatus.SUPPRESSED, reason="cancelled", finished_at=timezone.now())
        audit(
            workspace=workspace,
            actor=actor,
            action="broadcast.cancel",
            obj=broadcast,
            before=before,
            after={**_snapshot(broadcast), "stopped": stopped},
        )
    return stopped

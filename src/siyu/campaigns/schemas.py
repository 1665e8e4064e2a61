"""API shapes for broadcasts and their reports."""

import datetime
from decimal import Decimal
from typing import Any

from ninja import Schema

from siyu.campaigns.models import Broadcast


class BroadcastIn(Schema):
    name: str
    channel_id: int
    template_id: int
    include_segments: list[int] = []
    exclude_segments: list[int] = []
    holdout_percent: Decimal = Decimal("0")
    goal_event: str = "Order Completed"
    attribution_days: int = 3


class BroadcastPatch(Schema):
    name: str | None = None
    channel_id: int | None = None
    template_id: int | None = None
    include_segments: list[int] | None = None
    exclude_segments: list[int] | None = None
    holdout_percent: Decimal | None = None
    goal_event: str | None = None
    attribution_days: int | None = None


class SendIn(Schema):
    send_at: datetime.datetime | None = None  # now when absent
    recurrence: str = ""  # "", daily, weekly
    weekdays: list[int] = []  # ISO weekdays for weekly


class BroadcastOut(Schema):
    id: int
    name: str
    status: str
    channel_id: int
    template_id: int
    include_segments: list[int]
    exclude_segments: list[int]
    holdout_percent: Decimal
    send_at: datetime.datetime | None
    recurrence: str
    weekdays: list[int]
    next_run_at: datetime.datetime | None
    goal_event: str
    attribution_days: int
    runs: list[dict[str, Any]]
    created_at: datetime.datetime


def broadcast_out(broadcast: Broadcast) -> dict[str, Any]:
    return {
        "id": broadcast.pk,
        "name": broadcast.name,
        "status": broadcast.status,
        "channel_id": broadcast.channel_id,
        "template_id": broadcast.template_id,
        "include_segments": broadcast.include_segments,
        "exclude_segments": broadcast.exclude_segments,
        "holdout_percent": broadcast.holdout_percent,
        "send_at": broadcast.send_at,
        "recurrence": broadcast.recurrence,
        "weekdays": broadcast.weekdays,
        "next_run_at": broadcast.next_run_at,
        "goal_event": broadcast.goal_event,
        "attribution_days": broadcast.attribution_days,
        "runs": [
            {"number": r.number, "planned_at": r.planned_at, "counts": r.counts}
            for r in broadcast.runs.order_by("number")
        ],
        "created_at": broadcast.created_at,
    }

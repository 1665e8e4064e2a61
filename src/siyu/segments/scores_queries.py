"""Reads of the lifecycle stage, value tier and RFM scores for the console (docs/tiers.md):
the current distribution and the day-by-day flows between stages and tiers."""

import datetime
import zoneinfo
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.core.models import Workspace
from siyu.segments.models import (
    ContactScore,
    LifecycleStage,
    RfmSegment,
    StageFlow,
    ValueTier,
)

MAX_FLOW_DAYS = 3650


def stage_overview(workspace: Workspace) -> dict[str, Any]:
    """The workspace's contacts by stage, by tier, by stage × tier and by RFM segment (every
    choice present, zeros included), how many contacts have no score yet (created since
    the last refresh), and `computed_at`: the latest time a refresh changed a score (rows
    that do not change are not rewritten; the time of the last refresh itself is the
    scheduler's, RefreshSchedule.last_refresh)."""
    matrix = {stage: dict.fromkeys(ValueTier.values, 0) for stage in LifecycleStage.values}
    scores = ContactScore.objects.filter(workspace=workspace)
    for row in scores.values("stage", "tier").annotate(n=Count("id")).order_by():
        if row["stage"] in matrix and row["tier"] in matrix[row["stage"]]:
            matrix[row["stage"]][row["tier"]] = row["n"]
    rfm = dict.fromkeys(RfmSegment.values, 0)
    for row in (
        scores.exclude(rfm_segment="").values("rfm_segment").annotate(n=Count("id")).order_by()
    ):
        if row["rfm_segment"] in rfm:
            rfm[row["rfm_segment"]] = row["n"]
    stages = {stage: sum(tiers.values()) for stage, tiers in matrix.items()}
    tiers = {tier: sum(matrix[stage][tier] for stage in matrix) for tier in ValueTier.values}
    scored = sum(stages.values())
    contacts = Contact.objects.filter(workspace=workspace).count()
    return {
        "contacts": contacts,
        "scored": scored,
        "unscored": max(contacts - scored, 0),
        "stages": stages,
        "tiers": tiers,
        "matrix": matrix,
        "rfm": rfm,
        "rfm_scored": sum(rfm.values()),
        "computed_at": scores.aggregate(at=Max("computed_at"))["at"],
    }


def stage_flows(
    workspace: Workspace,
    days: int = 30,
    dimension: str | None = None,
    *,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """The moves recorded on each of the last `days` days (the workspace's time zone, today
    included; `now` defaults to the current time), oldest day first: {"day", "dimension",
    "from", "to", "count"}. `from` is "" for a contact's first score. `dimension` ("stage"
    or "tier") narrows them."""
    days = min(max(int(days), 1), MAX_FLOW_DAYS)
    today = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(workspace.timezone)).date()
    flows = StageFlow.objects.filter(
        workspace=workspace, day__gt=today - datetime.timedelta(days=days), day__lte=today
    )
    if dimension:
        flows = flows.filter(dimension=dimension)
    # one row per (day, dimension, from, to): the unique constraint
    rows = flows.order_by("day", "dimension", "from_value", "to_value").values(
        "day", "dimension", "from_value", "to_value", "count"
    )
    return [
        {
            "day": row["day"],
            "dimension": row["dimension"],
            "from": row["from_value"],
            "to": row["to_value"],
            "count": row["count"],
        }
        for row in rows
    ]

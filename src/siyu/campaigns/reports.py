"""What a broadcast run did: its funnel, its messages by status and reason, and what the
targeted did against the holdout.

Conversion is measured by **intention to treat**: the *targeted* group is every audience
member outside the holdout, including those a guardrail suppressed, because the holdout was
drawn before the guardrails and is compared with exactly that population. A member
converted when the goal event happened within the attribution window after the run was
planned; for "Order Completed" the orders themselves are read (revenue is their net total),
for any other goal the events.

Uplift is the difference of conversion rates, targeted minus holdout, with a 95% confidence
interval from the normal approximation of the difference of two proportions (Wald):
diff ± 1.96 · sqrt(p₁(1−p₁)/n₁ + p₂(1−p₂)/n₂). It is reported only when both groups have
members; with few conversions the interval is wide, and says so."""

import datetime
import math
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, Sum

from siyu.campaigns.models import AudienceGroup, AudienceMember, BroadcastRun
from siyu.messaging.models import LinkClick, OutboxMessage
from siyu.tracking.models import Event, Order, OrderStatus

Z95 = 1.959963984540054
ORDER_GOAL = "Order Completed"


def run_report(run: BroadcastRun) -> dict[str, Any]:
    broadcast = run.broadcast
    start = run.planned_at
    end = start + datetime.timedelta(days=broadcast.attribution_days)
    return {
        "run": run.number,
        "planned_at": run.planned_at,
        "funnel": run.counts,
        "messages": message_counts(run.workspace_id, run.source),
        "conversion": conversion(run, broadcast.goal_event, start, end),
        "window": {"start": start, "end": end, "goal_event": broadcast.goal_event},
    }


def message_counts(workspace_id: int, source: str) -> dict[str, Any]:
    rows = (
        OutboxMessage.objects.filter(workspace_id=workspace_id, source=source)
        .values("status", "reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_status: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["reason"]:
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["n"]
    clicked = (
        LinkClick.objects.filter(
            workspace_id=workspace_id, message__source=source, message__isnull=False
        )
        .values("message_id")
        .distinct()
        .count()
    )
    return {"by_status": by_status, "by_reason": by_reason, "clicked": clicked}


def conversion(run: BroadcastRun, goal: str, start, end) -> dict[str, Any]:
    members = AudienceMember.objects.filter(run=run)
    if goal == ORDER_GOAL:
        hits = Order.objects.filter(
            workspace_id=run.workspace_id,
            contact_id=OuterRef("contact_id"),
            placed_at__gte=start,
            placed_at__lt=end,
        ).exclude(status=OrderStatus.REFUNDED)
    else:
        # the member's events in the window, from the resolutions' (contact, time) index
        hits = Event.objects.filter(
            workspace_id=run.workspace_id,
            resolution__contact_id=OuterRef("contact_id"),
            resolution__timestamp__gte=start,
            resolution__timestamp__lt=end,
            event=goal,
        )
    rows = (
        members.annotate(
            targeted=~Q(group=AudienceGroup.HOLDOUT),
            converted=Exists(hits),
        )
        .values("targeted")
        .annotate(n=Count("id"), converted=Count("id", filter=Q(converted=True)))
        .order_by()
    )
    groups = {"targeted": {"n": 0, "converted": 0}, "holdout": {"n": 0, "converted": 0}}
    for row in rows:
        name = "targeted" if row["targeted"] else "holdout"
        groups[name] = {"n": row["n"], "converted": row["converted"]}
    if goal == ORDER_GOAL:
        _add_revenue(run, groups, start, end)
    for group in groups.values():
        group["rate"] = group["converted"] / group["n"] if group["n"] else None
    return {**groups, "uplift": uplift(groups["targeted"], groups["holdout"])}


def _add_revenue(run: BroadcastRun, groups: dict, start, end) -> None:
    holdout_ids = AudienceMember.objects.filter(run=run, group=AudienceGroup.HOLDOUT).values(
        "contact_id"
    )
    all_ids = AudienceMember.objects.filter(run=run).values("contact_id")
    orders = Order.objects.filter(
        workspace_id=run.workspace_id, placed_at__gte=start, placed_at__lt=end
    ).exclude(status=OrderStatus.REFUNDED)
    net = Sum(F("total_fen") - F("refunded_fen"))
    holdout = orders.filter(contact_id__in=holdout_ids).aggregate(v=net)["v"] or 0
    everyone = orders.filter(contact_id__in=all_ids).aggregate(v=net)["v"] or 0
    groups["holdout"]["revenue_fen"] = holdout
    groups["targeted"]["revenue_fen"] = everyone - holdout
    for group in groups.values():
        group["revenue_per_member_fen"] = (
            round(group["revenue_fen"] / group["n"]) if group["n"] else None
        )


def uplift(targeted: dict, holdout: dict) -> dict[str, Any] | None:
    """Absolute uplift of the conversion rate with its 95% interval, and the relative one."""
    n1, n2 = targeted["n"], holdout["n"]
    if not n1 or not n2:
        return None
    p1, p2 = targeted["converted"] / n1, holdout["converted"] / n2
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return {
        "absolute": diff,
        "ci95": [diff - Z95 * se, diff + Z95 * se],
        "relative": (p1 / p2 - 1) if p2 else None,
        "significant": se > 0 and abs(diff) > Z95 * se,
    }

"""What a journey did: contacts per step (per version), walks by status, each message step's
messages by status and reason with the conversions and revenue that followed them, and the
goal conversion of those who walked against the holdout (intention to treat, as for
broadcasts: reports.uplift)."""

import datetime
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from siyu.campaigns.journey_models import EnrollmentStatus, Journey, JourneyStepStat
from siyu.campaigns.reports import message_counts, uplift
from siyu.tracking.models import Order, OrderStatus


def journey_report(journey: Journey) -> dict[str, Any]:
    walks = journey.enrollments.all()
    by_status = dict(walks.values_list("status").annotate(n=Count("id")).order_by())
    steps: dict[int, dict[str, int]] = {}
    for version, step, entered in JourneyStepStat.objects.filter(
        version__journey=journey
    ).values_list("version__number", "step", "entered"):
        steps.setdefault(version, {})[step] = entered
    messages = {}
    graph = journey.live_version.graph if journey.live_version else {"steps": {}}
    for step_id, step in graph["steps"].items():
        if step["type"] in ("send", "webhook"):
            source = f"journey:{journey.pk}:{step_id}"
            messages[step_id] = {
                **message_counts(journey.workspace_id, source),
                **step_conversion(journey, source),
            }
    arms = walks.aggregate(
        targeted=Count("id", filter=~Q(status=EnrollmentStatus.HOLDOUT)),
        targeted_converted=Count(
            "id", filter=~Q(status=EnrollmentStatus.HOLDOUT) & Q(converted_at__isnull=False)
        ),
        holdout=Count("id", filter=Q(status=EnrollmentStatus.HOLDOUT)),
        holdout_converted=Count(
            "id", filter=Q(status=EnrollmentStatus.HOLDOUT) & Q(converted_at__isnull=False)
        ),
    )
    targeted = {"n": arms["targeted"], "converted": arms["targeted_converted"]}
    holdout = {"n": arms["holdout"], "converted": arms["holdout_converted"]}
    revenue = _revenue(journey, walks)
    for arm, name in ((targeted, "targeted"), (holdout, "holdout")):
        arm["rate"] = arm["converted"] / arm["n"] if arm["n"] else None
        arm["revenue_fen"] = revenue[name] or 0
        arm["revenue_per_member_fen"] = round(arm["revenue_fen"] / arm["n"]) if arm["n"] else None
    return {
        "walks": by_status,
        "steps": steps,
        "messages": messages,
        "conversion": {
            "goal_event": journey.goal_event,
            "targeted": targeted,
            "holdout": holdout,
            "uplift": uplift(targeted, holdout),
        },
    }


def _revenue(journey: Journey, walks) -> dict[str, int | None]:
    """Net order revenue of each arm's contacts within the attribution window after their
    entry (refunded orders excluded)."""
    window = datetime.timedelta(days=journey.attribution_days)
    per_walk = (
        Order.objects.filter(
            workspace_id=journey.workspace_id,
            contact_id=OuterRef("contact_id"),
            placed_at__gte=OuterRef("entered_at"),
            placed_at__lt=ExpressionWrapper(
                OuterRef("entered_at") + window, output_field=DateTimeField()
            ),
        )
        .exclude(status=OrderStatus.REFUNDED)
        .values("contact_id")
        .annotate(net=Sum(F("total_fen") - F("refunded_fen")))
        .values("net")
    )
    return walks.annotate(
        revenue=Coalesce(Subquery(per_walk, output_field=IntegerField()), 0)
    ).aggregate(
        targeted=Sum("revenue", filter=~Q(status=EnrollmentStatus.HOLDOUT)),
        holdout=Sum("revenue", filter=Q(status=EnrollmentStatus.HOLDOUT)),
    )


def step_conversion(journey: Journey, source: str) -> dict[str, Any]:
    """Of a message step's messages that left (sent or delivered), how many contacts reached
    the goal within the attribution window after their message, and the net revenue of
    their orders in that window. (The holdout entered the journey but never reached a step:
    the uplift is the journey's, above.)"""
    from siyu.messaging.models import OutboxMessage, OutboxStatus
    from siyu.tracking.models import Event

    if not journey.goal_event:
        return {"converted": None, "revenue_fen": None}
    window = datetime.timedelta(days=journey.attribution_days)
    until = ExpressionWrapper(OuterRef("sent_at") + window, output_field=DateTimeField())
    left = OutboxMessage.objects.filter(
        workspace_id=journey.workspace_id,
        source=source,
        status__in=(OutboxStatus.SENT, OutboxStatus.DELIVERED),
        sent_at__isnull=False,
    )
    orders = Order.objects.filter(
        workspace_id=journey.workspace_id,
        contact_id=OuterRef("contact_id"),
        placed_at__gte=OuterRef("sent_at"),
        placed_at__lt=until,
    ).exclude(status=OrderStatus.REFUNDED)
    if journey.goal_event == "Order Completed":
        goal = orders
    else:
        # the contact's events in the window, from the resolutions' (contact, time) index
        goal = Event.objects.filter(
            workspace_id=journey.workspace_id,
            resolution__contact_id=OuterRef("contact_id"),
            resolution__timestamp__gte=OuterRef("sent_at"),
            resolution__timestamp__lt=until,
            event=journey.goal_event,
        )
    net = (
        orders.values("contact_id")
        .annotate(net=Sum(F("total_fen") - F("refunded_fen")))
        .values("net")
    )
    totals = left.annotate(
        hit=Exists(goal), revenue=Coalesce(Subquery(net, output_field=IntegerField()), 0)
    ).aggregate(converted=Count("id", filter=Q(hit=True)), revenue_fen=Sum("revenue"))
    return {"converted": totals["converted"], "revenue_fen": totals["revenue_fen"] or 0}

"""What processed events do to journeys (the tracking app's processed hook), in this order:

1. **Goal**: a walk whose journey's goal event the contact just performed ends as
   `converted`; a held-out contact's conversion is recorded too (for the uplift).
2. **Waiting for an event**: a walk in a wait step for this event (its filters matching)
   moves on to the step's `next` now, before the timeout.
3. **Event triggers**: the contact enters journeys triggered by this event.

One query finds the workspace's active journeys; nothing else runs unless one of them cares
about an event in the batch."""

import datetime
from collections import defaultdict
from typing import Any

from django.db.models import F
from django.utils import timezone

from siyu.campaigns.journey_enroll import enroll
from siyu.campaigns.journey_models import (
    EnrollmentStatus,
    Journey,
    JourneyEnrollment,
    JourneyStatus,
)
from siyu.core.models import Workspace


def matches(filters: list[dict], properties: Any) -> bool:
    """Whether an event's properties pass every filter."""
    props = properties if isinstance(properties, dict) else {}
    for spec in filters:
        op, wanted = spec["op"], spec.get("value")
        if spec["property"] not in props:
            return False
        value = props[spec["property"]]
        if op == "exists":
            continue
        if op in ("eq", "neq"):
            same = str(value) == str(wanted)
            if same != (op == "eq"):
                return False
        elif op == "contains":
            if str(wanted) not in str(value):
                return False
        else:
            try:
                left, right = float(value), float(wanted)
            except (TypeError, ValueError):
                return False
            ok = {
                "gt": left > right,
                "gte": left >= right,
                "lt": left < right,
                "lte": left <= right,
            }[op]
            if not ok:
                return False
    return True


def after_events_processed(workspace: Workspace, event_ids: list[int]) -> None:
    journeys = list(
        Journey.objects.filter(workspace=workspace, status=JourneyStatus.ACTIVE)
        .select_related("live_version")
        .exclude(live_version=None)
    )
    if not journeys or not event_ids:
        return
    names = set()
    for journey in journeys:
        graph = journey.live_version.graph
        if journey.goal_event:
            names.add(journey.goal_event)
        if graph["trigger"]["type"] == "event":
            names.add(graph["trigger"]["event"])
        names |= {s["until_event"]["event"] for s in graph["steps"].values() if "until_event" in s}
    from siyu.tracking.models import Event

    events = list(
        Event.objects.filter(
            pk__in=event_ids, event__in=names, resolution__contact_id__isnull=False
        )
        .order_by("id")
        .values("event", "properties", "timestamp", contact_id=F("resolution__contact_id"))
    )
    if not events:
        return
    now = timezone.now()
    by_name: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_name[event["event"]].append(event)
    for journey in journeys:
        _goal(journey, by_name.get(journey.goal_event, []))
    _waits(journeys, by_name, now)
    for journey in journeys:
        trigger = journey.live_version.graph["trigger"]
        if trigger["type"] == "event":
            hits = [
                e["contact_id"]
                for e in by_name.get(trigger["event"], [])
                if matches(trigger.get("where", []), e["properties"])
            ]
            if hits:
                enroll(journey, hits, now)


def _goal(journey: Journey, events: list[dict]) -> None:
    if not events:
        return
    first: dict[int, datetime.datetime] = {}
    for event in events:
        first.setdefault(event["contact_id"], event["timestamp"])
    window = datetime.timedelta(days=journey.attribution_days)
    walks = JourneyEnrollment.objects.filter(
        journey=journey,
        contact_id__in=list(first),
        status__in=(EnrollmentStatus.ACTIVE, EnrollmentStatus.HOLDOUT),
        converted_at__isnull=True,
    ).values_list("id", "contact_id", "status", "entered_at")
    for walk_id, contact_id, status, entered_at in walks:
        at = first[contact_id]
        if not entered_at <= at <= entered_at + window:
            continue
        changes: dict[str, Any] = {"converted_at": at}
        if status == EnrollmentStatus.ACTIVE:
            changes.update(status=EnrollmentStatus.CONVERTED, wake_at=None, finished_at=at)
        JourneyEnrollment.objects.filter(pk=walk_id, status=status).update(**changes)


def _waits(journeys: list[Journey], by_name: dict[str, list[dict]], now) -> None:
    waiting = JourneyEnrollment.objects.filter(
        journey_id__in=[j.pk for j in journeys],
        status=EnrollmentStatus.ACTIVE,
        waiting=True,
        waiting_for__in=list(by_name),
        contact_id__in={e["contact_id"] for events in by_name.values() for e in events},
    ).select_related("version")
    for walk in waiting:
        step = walk.version.graph["steps"].get(walk.step, {})
        wanted = step.get("until_event", {})
        if not any(
            e["contact_id"] == walk.contact_id and matches(wanted.get("where", []), e["properties"])
            for e in by_name.get(walk.waiting_for, [])
        ):
            continue
        target = step.get("next")
        changes: dict[str, Any] = {"waiting": False, "waiting_for": ""}
        if target is None:
            changes.update(status=EnrollmentStatus.COMPLETED, wake_at=None, finished_at=now)
        else:
            changes.update(step=target, wake_at=now)
        JourneyEnrollment.objects.filter(pk=walk.pk, waiting=True, step=walk.step).update(**changes)

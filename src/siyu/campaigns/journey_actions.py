"""Every write to journeys: create, edit (a new version), activate, pause, archive, enter
contacts through the API; and the worker's tick."""

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from siyu.campaigns.cleaning import (
    clean_attribution_days,
    clean_goal,
    clean_name,
    clean_share,
    is_row_id,
)
from siyu.campaigns.journey_enroll import (
    enroll,
    enroll_by_date,
    enroll_from_segment_changes,
    latest_change_id,
    next_date_run,
)
from siyu.campaigns.journey_graph import validate_graph
from siyu.campaigns.journey_models import (
    EnrollmentStatus,
    Journey,
    JourneyEnrollment,
    JourneyStatus,
    JourneyVersion,
)
from siyu.contacts.models import Contact
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import Workspace

SETTINGS = ("name", "reentry_days", "goal_event", "attribution_days", "holdout_percent")


def _clean_settings(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "name" in values:
        cleaned["name"] = clean_name(values["name"])
    if "reentry_days" in values:
        days = values["reentry_days"]
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650
        ):
            raise ValidationError("reentry_days", "expected nothing (once) or 1 to 3650 days")
        cleaned["reentry_days"] = days
    if "goal_event" in values:
        cleaned["goal_event"] = clean_goal(values["goal_event"], required=False)
    if "attribution_days" in values:
        cleaned["attribution_days"] = clean_attribution_days(values["attribution_days"])
    if "holdout_percent" in values:
        cleaned["holdout_percent"] = clean_share(values["holdout_percent"])
    return cleaned


def _snapshot(journey: Journey) -> dict[str, Any]:
    return {
        "name": journey.name,
        "status": journey.status,
        "version": journey.live_version.number if journey.live_version else None,
        "goal_event": journey.goal_event,
        "holdout_percent": str(journey.holdout_percent),
        "reentry_days": journey.reentry_days,
    }


def journey_create(
    *, workspace: Workspace, actor: Actor, name: str, graph: Any, **settings: Any
) -> Journey:
    """A draft journey with its first version."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    cleaned = _clean_settings({"name": name, **settings})
    clean_graph = validate_graph(workspace, graph)
    with transaction.atomic():
        journey = Journey.objects.create(workspace=workspace, created_by=actor.user, **cleaned)
        JourneyVersion.objects.create(
            workspace=workspace, journey=journey, number=1, graph=clean_graph
        )
        audit(
            workspace=workspace,
            actor=actor,
            action="journey.create",
            obj=journey,
            after={**_snapshot(journey), "graph": clean_graph},
        )
    return journey


def journey_update(
    *, workspace: Workspace, actor: Actor, journey: Journey, graph: Any = None, **settings: Any
) -> Journey:
    """Change settings, and with a graph publish a new version: contacts already inside keep
    walking the version they entered; new entries take the new one (when the journey is
    live, at once)."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    cleaned = _clean_settings(settings)
    clean_graph = validate_graph(workspace, graph) if graph is not None else None
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk, workspace=workspace)
        if journey.status == JourneyStatus.ARCHIVED:
            raise Conflict("an archived journey cannot be edited")
        before = _snapshot(journey)
        for name, value in cleaned.items():
            setattr(journey, name, value)
        if clean_graph is not None:
            number = (journey.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = JourneyVersion.objects.create(
                workspace=workspace, journey=journey, number=number, graph=clean_graph
            )
            if journey.status != JourneyStatus.DRAFT:
                if journey.status == JourneyStatus.ACTIVE:
                    _check_channels_enabled(version)
                _go_live(journey, version)
        journey.updated_at = timezone.now()
        journey.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="journey.update",
            obj=journey,
            before=before,
            after={**_snapshot(journey), "graph": clean_graph},
        )
    return journey


def _go_live(journey: Journey, version: JourneyVersion) -> None:
    trigger = version.graph["trigger"]
    previous = journey.live_version.graph["trigger"] if journey.live_version else None
    journey.live_version = version
    if trigger != previous:
        # a new trigger listens from now on, not to what happened before
        journey.trigger_cursor = latest_change_id(journey.workspace_id)
        journey.next_date_run_at = (
            next_date_run(journey, timezone.now()) if trigger["type"] == "date" else None
        )


def _resume(journey: Journey) -> None:
    """Back from a pause: a date trigger waits for its next time of day (not at once, at
    whatever hour it is); a segment trigger goes on from where it stopped reading, so that
    contacts who entered the segment meanwhile are not missed."""
    trigger = journey.live_version.graph["trigger"]
    if trigger["type"] == "date":
        journey.next_date_run_at = next_date_run(journey, timezone.now())


def _check_channels_enabled(version: JourneyVersion) -> None:
    """A live journey must be able to send: a message step on a disabled channel would queue
    messages nobody sends."""
    from siyu.messaging.models import ChannelConfig

    for step_id, step in version.graph["steps"].items():
        if step["type"] in ("send", "webhook"):
            enabled = ChannelConfig.objects.filter(pk=step["channel_id"], enabled=True).exists()
            if not enabled:
                raise ValidationError(
                    f"graph.steps.{step_id}.channel_id",
                    "the channel is disabled: enable it before the journey goes live",
                )


def journey_set_status(
    *, workspace: Workspace, actor: Actor, journey: Journey, status: str
) -> Journey:
    """active (start or resume), paused (walks stop where they are), archived (every walk
    inside ends, `exited`)."""
    if status not in (JourneyStatus.ACTIVE, JourneyStatus.PAUSED, JourneyStatus.ARCHIVED):
        raise ValidationError("status", "expected active, paused or archived")
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk, workspace=workspace)
        if journey.status == JourneyStatus.ARCHIVED:
            raise Conflict("the journey is archived")
        before = _snapshot(journey)
        if status == JourneyStatus.ACTIVE:
            if journey.live_version is None:
                _go_live(journey, journey.versions.order_by("-number").first())
            elif journey.status == JourneyStatus.PAUSED:
                _resume(journey)
            _check_channels_enabled(journey.live_version)
        if status == JourneyStatus.ARCHIVED:
            JourneyEnrollment.objects.filter(
                journey=journey, status=EnrollmentStatus.ACTIVE
            ).update(status=EnrollmentStatus.EXITED, wake_at=None, finished_at=timezone.now())
        journey.status = status
        journey.updated_at = timezone.now()
        journey.save()
        audit(
            workspace=workspace,
            actor=actor,
            action=f"journey.{status}",
            obj=journey,
            before=before,
            after=_snapshot(journey),
        )
    return journey


def journey_enter(
    *, workspace: Workspace, actor: Actor, journey: Journey, contact_ids: list[int]
) -> int:
    """Contacts entered through the API (a journey triggered by `api`); how many entered
    (the entry rule may keep some out)."""
    if journey.status != JourneyStatus.ACTIVE or journey.live_version is None:
        raise Conflict("the journey is not active")
    if journey.live_version.graph["trigger"]["type"] != "api":
        raise Conflict("this journey is not entered through the API")
    for position, contact_id in enumerate(contact_ids):
        if not is_row_id(contact_id):
            raise ValidationError(f"contact_ids[{position}]", "no such contact")
    known = set(
        Contact.objects.filter(workspace=workspace, pk__in=contact_ids).values_list("pk", flat=True)
    )
    for position, contact_id in enumerate(contact_ids):
        if contact_id not in known:
            raise ValidationError(f"contact_ids[{position}]", "no such contact")
    with transaction.atomic():
        entered = enroll(journey, contact_ids)
        audit(
            workspace=workspace,
            actor=actor,
            action="journey.enter",
            obj=journey,
            after={"contacts": len(contact_ids), "entered": entered},
        )
    return entered


def journeys_tick(now=None) -> dict[str, int]:
    """The worker's pass: enter contacts from segment changes and dates, then move every due
    walk."""
    from siyu.campaigns.journey_engine import advance

    now = now or timezone.now()
    entered = 0
    live = Journey.objects.filter(status=JourneyStatus.ACTIVE).select_related(
        "live_version", "workspace"
    )
    for journey in live:
        trigger = journey.live_version.graph["trigger"] if journey.live_version else {}
        with transaction.atomic():
            # one tick per journey at a time (two workers may both run one): the cursor and
            # the day's run are read and advanced under the row's lock
            journey = (
                Journey.objects.select_for_update(of=("self",))
                .select_related("live_version", "workspace")
                .get(pk=journey.pk)
            )
            if journey.status != JourneyStatus.ACTIVE:
                continue
            if trigger.get("type") in ("segment_entered", "segment_exited"):
                entered += enroll_from_segment_changes(journey, now)
            elif trigger.get("type") == "date":
                entered += enroll_by_date(journey, now)
    return {"entered": entered, "steps": advance(now)}

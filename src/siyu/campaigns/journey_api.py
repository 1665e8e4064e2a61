"""REST endpoints for journeys (thin: parse, authorise, call). docs/journeys.md explains
graphs, triggers and steps."""

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from siyu.campaigns import journey_actions as actions
from siyu.campaigns.journey_models import Journey
from siyu.campaigns.journey_reports import journey_report
from siyu.core.api import allowed
from siyu.core.errors import NotFound

journeys_router = Router(tags=["journeys"])


class JourneyIn(Schema):
    name: str
    graph: dict[str, Any]
    reentry_days: int | None = None
    goal_event: str = ""
    attribution_days: int = 7
    holdout_percent: float = 0


class JourneyPatch(Schema):
    name: str | None = None
    graph: dict[str, Any] | None = None
    reentry_days: int | None = None
    goal_event: str | None = None
    attribution_days: int | None = None
    holdout_percent: float | None = None


class StatusIn(Schema):
    status: str


class EnterIn(Schema):
    contact_ids: list[int] = Field(..., max_length=10_000)


def journey_out(journey: Journey) -> dict[str, Any]:
    live = journey.live_version
    latest = journey.versions.order_by("-number").first()
    return {
        "id": journey.pk,
        "name": journey.name,
        "status": journey.status,
        "live_version": live.number if live else None,
        "graph": (live or latest).graph if (live or latest) else None,
        "versions": journey.versions.count(),
        "reentry_days": journey.reentry_days,
        "goal_event": journey.goal_event,
        "attribution_days": journey.attribution_days,
        "holdout_percent": float(journey.holdout_percent),
        "created_at": journey.created_at,
    }


def _get(workspace, journey_id) -> Journey:
    journey = (
        Journey.objects.filter(workspace=workspace, pk=journey_id)
        .select_related("live_version")
        .first()
    )
    if journey is None:
        raise NotFound("no such journey")
    return journey


@journeys_router.get("", summary="List journeys")
def list_journeys(request: HttpRequest):
    workspace, _ = allowed(request, "campaigns.view")
    qs = Journey.objects.filter(workspace=workspace).select_related("live_version").order_by("-id")
    return [journey_out(j) for j in qs[:200]]


@journeys_router.post("", response={201: dict}, summary="Create a journey (a draft)")
def create_journey(request: HttpRequest, payload: JourneyIn):
    """The graph is checked whole; a problem answers 422 naming its path
    (`graph.steps.wait.duration.days`)."""
    workspace, actor = allowed(request, "campaigns.manage")
    journey = actions.journey_create(workspace=workspace, actor=actor, **payload.dict())
    return Status(201, journey_out(journey))


@journeys_router.get("/{journey_id}", summary="One journey")
def get_journey(request: HttpRequest, journey_id: int):
    workspace, _ = allowed(request, "campaigns.view")
    return journey_out(_get(workspace, journey_id))


@journeys_router.patch("/{journey_id}", summary="Edit a journey (a graph makes a new version)")
def update_journey(request: HttpRequest, journey_id: int, payload: JourneyPatch):
    workspace, actor = allowed(request, "campaigns.manage")
    journey = actions.journey_update(
        workspace=workspace,
        actor=actor,
        journey=_get(workspace, journey_id),
        **payload.dict(exclude_unset=True),
    )
    return journey_out(journey)


@journeys_router.post("/{journey_id}/status", summary="Activate, pause or archive")
def set_status(request: HttpRequest, journey_id: int, payload: StatusIn):
    workspace, actor = allowed(request, "campaigns.manage")
    journey = actions.journey_set_status(
        workspace=workspace,
        actor=actor,
        journey=_get(workspace, journey_id),
        status=payload.status,
    )
    return journey_out(journey)


@journeys_router.post("/{journey_id}/enter", summary="Enter contacts (API trigger)")
def enter(request: HttpRequest, journey_id: int, payload: EnterIn):
    """For a journey whose trigger is `api`; the entry rule may keep some out."""
    workspace, actor = allowed(request, "campaigns.manage")
    entered = actions.journey_enter(
        workspace=workspace,
        actor=actor,
        journey=_get(workspace, journey_id),
        contact_ids=payload.contact_ids,
    )
    return {"entered": entered}


@journeys_router.get("/{journey_id}/report", summary="Steps, walks, messages and uplift")
def report(request: HttpRequest, journey_id: int):
    workspace, _ = allowed(request, "campaigns.view")
    return journey_report(_get(workspace, journey_id))

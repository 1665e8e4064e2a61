"""REST endpoints for broadcasts (thin: parse, authorise, call). docs/broadcasts.md explains
them."""

from django.http import HttpRequest
from ninja import Router, Status

from siyu.campaigns import actions, planner, queries, reports
from siyu.campaigns.models import Broadcast
from siyu.campaigns.schemas import BroadcastIn, BroadcastOut, BroadcastPatch, SendIn, broadcast_out
from siyu.core.api import allowed

broadcasts_router = Router(tags=["broadcasts"])


@broadcasts_router.get("", response=list[BroadcastOut], summary="List broadcasts")
def list_broadcasts(request: HttpRequest, status: str = ""):
    workspace, _ = allowed(request, "campaigns.view")
    qs = Broadcast.objects.filter(workspace=workspace).order_by("-id")
    if status:
        qs = qs.filter(status=status)
    return [broadcast_out(b) for b in qs[:200]]


@broadcasts_router.post("", response={201: BroadcastOut}, summary="Create a draft broadcast")
def create_broadcast(request: HttpRequest, payload: BroadcastIn):
    workspace, actor = allowed(request, "campaigns.manage")
    broadcast = actions.broadcast_create(workspace=workspace, actor=actor, **payload.dict())
    return Status(201, broadcast_out(broadcast))


@broadcasts_router.get("/{broadcast_id}", response=BroadcastOut, summary="One broadcast")
def get_broadcast(request: HttpRequest, broadcast_id: int):
    workspace, _ = allowed(request, "campaigns.view")
    return broadcast_out(queries.get_broadcast_for(workspace, broadcast_id))


@broadcasts_router.patch("/{broadcast_id}", response=BroadcastOut, summary="Edit a broadcast")
def update_broadcast(request: HttpRequest, broadcast_id: int, payload: BroadcastPatch):
    workspace, actor = allowed(request, "campaigns.manage")
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    broadcast = actions.broadcast_update(
        workspace=workspace, actor=actor, broadcast=broadcast, **payload.dict(exclude_unset=True)
    )
    return broadcast_out(broadcast)


@broadcasts_router.get("/{broadcast_id}/preview", summary="The audience after each guardrail")
def preview_broadcast(request: HttpRequest, broadcast_id: int):
    """What a run would do now, writing nothing: included, audience (after exclusions),
    holdout, suppressed by reason, to_send."""
    workspace, _ = allowed(request, "campaigns.view")
    return planner.preview(queries.get_broadcast_for(workspace, broadcast_id))


@broadcasts_router.post("/{broadcast_id}/send", response=BroadcastOut, summary="Send or schedule")
def send_broadcast(request: HttpRequest, broadcast_id: int, payload: SendIn):
    """Without `send_at` the audience is frozen and queued now; with it (and optionally
    `recurrence` daily/weekly with `weekdays`) the worker does it then. Only a draft can be
    sent: a second call answers 409."""
    workspace, actor = allowed(request, "campaigns.manage")
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    broadcast = actions.broadcast_send(
        workspace=workspace, actor=actor, broadcast=broadcast, **payload.dict()
    )
    return broadcast_out(broadcast)


@broadcasts_router.post("/{broadcast_id}/cancel", summary="Cancel")
def cancel_broadcast(request: HttpRequest, broadcast_id: int):
    """No further runs; queued messages are suppressed (reason `cancelled`)."""
    workspace, actor = allowed(request, "campaigns.manage")
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    return {
        "stopped": actions.broadcast_cancel(workspace=workspace, actor=actor, broadcast=broadcast)
    }


@broadcasts_router.get("/{broadcast_id}/runs/{number}/report", summary="A run's report")
def run_report(request: HttpRequest, broadcast_id: int, number: int):
    """Funnel, messages by status and reason, conversion of the targeted and the holdout,
    revenue and the uplift with its 95% interval."""
    workspace, _ = allowed(request, "campaigns.view")
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    return reports.run_report(queries.get_run_for(broadcast, number))

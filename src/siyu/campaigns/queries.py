"""Reads of broadcasts, scoped by workspace."""

from siyu.campaigns.models import Broadcast, BroadcastRun
from siyu.core.errors import NotFound


def get_broadcast_for(workspace, broadcast_id) -> Broadcast:
    broadcast = (
        Broadcast.objects.filter(workspace=workspace, pk=broadcast_id)
        .select_related("channel", "template", "workspace")
        .first()
    )
    if broadcast is None:
        raise NotFound("no such broadcast")
    return broadcast


def get_run_for(broadcast: Broadcast, number) -> BroadcastRun:
    run = broadcast.runs.filter(number=number).select_related("broadcast").first()
    if run is None:
        raise NotFound("no such run")
    return run

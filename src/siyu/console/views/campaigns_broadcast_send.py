"""Sending a broadcast from the console: the confirm step (the count it would send now and
the schedule in words), then broadcast_send (now, or at a time once / every day / every week
on chosen weekdays); and cancelling. Only a draft can be sent: a second send is refused."""

import datetime
import zoneinfo
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.campaigns import actions, planner, queries
from siyu.campaigns.models import BroadcastStatus
from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws, to_int
from siyu.console.views.campaigns_broadcasts import broadcast_page, local_time, schedule_words
from siyu.console.views.campaigns_reports import funnel_rows
from siyu.console.views.messaging_fields import place_error
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, SiyuError, ValidationError
from siyu.core.models import Workspace

SCHEDULE_FIELDS = ("send_at", "recurrence", "weekdays")


def _typed_schedule(post: QueryDict) -> dict[str, Any]:
    return {
        "when": "later" if post.get("when") == "later" else "now",
        "send_at": post.get("send_at", "").strip(),
        "recurrence": post.get("recurrence", ""),
        "weekdays": [d for d in (to_int(v) for v in post.getlist("weekdays")) if d is not None],
    }


def _send_values(workspace: Workspace, typed: dict[str, Any]) -> dict[str, Any]:
    """broadcast_send's arguments: nothing to send now; else the time typed in the
    workspace's time zone, the recurrence and its weekdays."""
    if typed["when"] == "now":
        return {}
    if not typed["send_at"]:
        raise ValidationError("send_at", "this field is required")
    try:
        moment = datetime.datetime.fromisoformat(typed["send_at"])
    except ValueError:
        raise ValidationError("send_at", "expected a date and time") from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(workspace.timezone))
    return {"send_at": moment, "recurrence": typed["recurrence"], "weekdays": typed["weekdays"]}


@workspace_view("campaigns.manage")
@require_POST
def broadcast_send(
    request: HttpRequest, workspace: Workspace, actor: Actor, broadcast_id: int
) -> HttpResponse:
    """First the confirm step (the count it would send now, the schedule in words); with
    confirm=1 the send itself. Only a draft can be sent: a second send is refused."""
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    typed = _typed_schedule(request.POST)
    try:
        values = _send_values(workspace, typed)
        if request.POST.get("confirm") != "1":
            if broadcast.status != BroadcastStatus.DRAFT:
                raise Conflict("the broadcast was already sent or scheduled")
            preview = planner.preview(broadcast)
            context = {
                "broadcast": broadcast,
                "typed": typed,
                "values": values,
                "to_send": preview["to_send"],
                "funnel": funnel_rows(preview),
                "when_text": _confirm_when(workspace, values),
                "channel_disabled": not broadcast.channel.enabled,
            }
            return render_ws(request, "console/campaigns/broadcast_confirm.html", context)
        broadcast = actions.broadcast_send(
            workspace=workspace, actor=actor, broadcast=broadcast, **values
        )
    except SiyuError as exc:
        errors = place_error(exc, SCHEDULE_FIELDS)
        # not about the schedule (a disabled channel, a second send): said above the form
        send_error = exc.localized() if errors.pop("general", "") else ""
        return broadcast_page(
            request,
            workspace,
            queries.get_broadcast_for(workspace, broadcast_id),
            schedule=typed,
            schedule_errors=errors,
            send_error=send_error,
            status=exc.status,
        )
    if broadcast.status == BroadcastStatus.SCHEDULED:
        messages.success(
            request,
            _("Scheduled: the first run goes out %(time)s.")
            % {"time": local_time(workspace, broadcast.next_run_at)},
        )
    else:
        run = broadcast.runs.order_by("-number").first()
        queued = run.counts.get("to_send", 0) if run else 0
        messages.success(request, _("Sending: %(n)s messages queued.") % {"n": queued})
    return redirect("console:broadcast", workspace.slug, broadcast.pk)


def _confirm_when(workspace: Workspace, values: dict[str, Any]) -> str:
    if not values:
        return _("Now")
    return schedule_words(workspace, values["send_at"], values["recurrence"], values["weekdays"])


@workspace_view("campaigns.manage")
@require_POST
def broadcast_cancel(
    request: HttpRequest, workspace: Workspace, actor: Actor, broadcast_id: int
) -> HttpResponse:
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    try:
        stopped = actions.broadcast_cancel(workspace=workspace, actor=actor, broadcast=broadcast)
    except SiyuError as exc:
        refused = _("This broadcast is already finished or cancelled.")
        return broadcast_page(request, workspace, broadcast, send_error=refused, status=exc.status)
    messages.success(
        request, _("Broadcast cancelled; %(n)s queued messages stopped.") % {"n": stopped}
    )
    return redirect("console:broadcast", workspace.slug, broadcast.pk)

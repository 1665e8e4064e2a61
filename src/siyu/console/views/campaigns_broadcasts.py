"""群发: the list, the composer (who, what, how it is measured) with the guardrail preview of
the saved draft, and the broadcast's page: the composer while it can be edited, the send and
cancel cards, its runs and the chosen run's report. Sending and cancelling are in
campaigns_broadcast_send."""

import datetime
import zoneinfo
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from siyu.accounts.access import can
from siyu.campaigns import actions, planner, queries
from siyu.campaigns.models import Broadcast, BroadcastRun, BroadcastStatus
from siyu.console.access import workspace_view
from siyu.console.helpers import is_partial, render_ws, to_int
from siyu.console.views.campaigns_labels import (
    BROADCAST_BADGES,
    BROADCAST_STATUS,
    RECURRENCE,
    WEEKDAYS,
    label,
)
from siyu.console.views.campaigns_reports import funnel_rows, run_context
from siyu.console.views.messaging_fields import kind_label, place_error
from siyu.console.views.segments_builder import recent_event_names
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace
from siyu.messaging.models import ChannelConfig, MessageTemplate, OutboxMessage, OutboxStatus
from siyu.segments.models import Segment
from siyu.segments.queries import segments as live_segments

COMPOSER_FIELDS = (
    "name",
    "channel_id",
    "template_id",
    "include_segments",
    "exclude_segments",
    "holdout_percent",
    "goal_event",
    "attribution_days",
)
EDITABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)
CANCELLABLE = (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING)
DELIVERED = (OutboxStatus.SENT, OutboxStatus.DELIVERED)
NEW_BROADCAST = {
    "name": "",
    "channel_id": None,
    "template_id": None,
    "include_segments": [],
    "exclude_segments": [],
    "holdout_percent": "10",
    "goal_event": "Order Completed",
    "attribution_days": "3",
}


# --- the list -----------------------------------------------------------------------------


@workspace_view("campaigns.view")
@require_GET
def broadcast_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    broadcasts = list(
        Broadcast.objects.filter(workspace=workspace)
        .select_related("channel")
        .order_by("-id")[:200]
    )
    runs = BroadcastRun.objects.filter(broadcast__in=broadcasts).only("broadcast_id", "number")
    source_of = {run.source: run.broadcast_id for run in runs}
    delivered: dict[int, int] = {}
    counted = (
        OutboxMessage.objects.filter(
            workspace=workspace, source__in=list(source_of), status__in=DELIVERED
        )
        .values("source")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in counted:
        broadcast_id = source_of[row["source"]]
        delivered[broadcast_id] = delivered.get(broadcast_id, 0) + row["n"]
    names = _segment_names(workspace, broadcasts)
    rows = [
        {
            "broadcast": b,
            "status_label": label(BROADCAST_STATUS, b.status),
            "badge": BROADCAST_BADGES.get(b.status, ""),
            "channel_kind": kind_label(b.channel.kind),
            "audience": _audience_text(b, names),
            "sent": delivered.get(b.pk, 0),
        }
        for b in broadcasts
    ]
    return render_ws(request, "console/campaigns/broadcasts.html", {"rows": rows})


def _segment_names(workspace: Workspace, broadcasts: list[Broadcast]) -> dict[int, str]:
    ids = {i for b in broadcasts for i in [*b.include_segments, *b.exclude_segments]}
    return dict(Segment.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", "name"))


def _audience_text(broadcast: Broadcast, names: dict[int, str]) -> str:
    def listed(ids: list[int]) -> str:
        return "、".join(names.get(i, _("(missing)")) for i in ids)

    text = listed(broadcast.include_segments) or _("Everyone")
    if broadcast.exclude_segments:
        text += " − " + listed(broadcast.exclude_segments)
    return text


# --- the composer -------------------------------------------------------------------------


def _typed(post: QueryDict) -> dict[str, Any]:
    return {
        "name": post.get("name", ""),
        "channel_id": to_int(post.get("channel_id")),
        "template_id": to_int(post.get("template_id")),
        "include_segments": post.getlist("include_segments"),
        "exclude_segments": post.getlist("exclude_segments"),
        "holdout_percent": post.get("holdout_percent", "").strip(),
        "goal_event": post.get("goal_event", ""),
        "attribution_days": post.get("attribution_days", "").strip(),
    }


def _values(typed: dict[str, Any]) -> dict[str, Any]:
    """What the action is given: ids and days as numbers; anything that is not one as typed,
    so that the action names the field."""

    def ids(values: list[str]) -> Any:
        numbers = [to_int(v) for v in values]
        return numbers if None not in numbers else values

    days = to_int(typed["attribution_days"])
    return {
        "name": typed["name"],
        "channel_id": typed["channel_id"],
        "template_id": typed["template_id"],
        "include_segments": ids(typed["include_segments"]),
        "exclude_segments": ids(typed["exclude_segments"]),
        "holdout_percent": typed["holdout_percent"] or "0",
        "goal_event": typed["goal_event"],
        "attribution_days": days if days is not None else typed["attribution_days"],
    }


def _stored(broadcast: Broadcast) -> dict[str, Any]:
    return {
        "name": broadcast.name,
        "channel_id": broadcast.channel_id,
        "template_id": broadcast.template_id,
        "include_segments": broadcast.include_segments,
        "exclude_segments": broadcast.exclude_segments,
        "holdout_percent": f"{broadcast.holdout_percent.normalize():f}",
        "goal_event": broadcast.goal_event,
        "attribution_days": str(broadcast.attribution_days),
    }


def _templates_for(workspace: Workspace, channel: ChannelConfig | None) -> list[MessageTemplate]:
    if channel is None:
        return []
    qs = MessageTemplate.objects.filter(workspace=workspace, kind=channel.kind, archived=False)
    return list(qs.order_by("name"))


def composer_context(
    workspace: Workspace, form: dict[str, Any], errors: dict[str, str] | None = None
) -> dict[str, Any]:
    channels = list(ChannelConfig.objects.filter(workspace=workspace).order_by("-enabled", "name"))
    chosen = next((c for c in channels if c.pk == form["channel_id"]), None)
    picked = {f: {str(i) for i in form[f]} for f in ("include_segments", "exclude_segments")}
    return {
        "form": form,
        "errors": errors or {},
        "channels": [{"channel": c, "kind_label": kind_label(c.kind)} for c in channels],
        "channel": chosen,
        "templates": _templates_for(workspace, chosen),
        "segments": [
            {
                "segment": s,
                "included": str(s.pk) in picked["include_segments"],
                "excluded": str(s.pk) in picked["exclude_segments"],
            }
            for s in live_segments(workspace).order_by("name")
        ],
        "events": recent_event_names(workspace),
    }


@workspace_view("campaigns.manage")
@require_http_methods(["GET", "POST"])
def broadcast_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    if request.method != "POST":
        return broadcast_page(
            request, workspace, None, composer=composer_context(workspace, NEW_BROADCAST)
        )
    typed = _typed(request.POST)
    try:
        broadcast = actions.broadcast_create(workspace=workspace, actor=actor, **_values(typed))
    except SiyuError as exc:
        composer = composer_context(workspace, typed, place_error(exc, COMPOSER_FIELDS))
        return broadcast_page(request, workspace, None, composer=composer, status=exc.status)
    messages.success(request, _("Draft saved: check the preview, then send or schedule it."))
    return redirect("console:broadcast", workspace.slug, broadcast.pk)


@workspace_view("campaigns.manage")
@require_POST
def broadcast_save(
    request: HttpRequest, workspace: Workspace, actor: Actor, broadcast_id: int
) -> HttpResponse:
    """Save the composer; htmx gets the form back (and the preview is told to refresh)."""
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    typed = _typed(request.POST)
    errors: dict[str, str] = {}
    status = 200
    try:
        broadcast = actions.broadcast_update(
            workspace=workspace, actor=actor, broadcast=broadcast, **_values(typed)
        )
    except SiyuError as exc:
        errors, status = place_error(exc, COMPOSER_FIELDS), exc.status
    if not is_partial(request, "composer"):
        if status == 200:
            messages.success(request, _("Broadcast saved."))
            return redirect("console:broadcast", workspace.slug, broadcast.pk)
        composer = composer_context(workspace, typed, errors)
        return broadcast_page(request, workspace, broadcast, composer=composer, status=status)
    context = {
        "broadcast": broadcast,
        "saved": status == 200,
        **composer_context(workspace, typed if errors else _stored(broadcast), errors),
    }
    response = render_ws(request, "console/campaigns/_composer.html", context, status=status)
    if status == 200:
        response.headers["HX-Trigger"] = "broadcast-saved"
    return response


@workspace_view("campaigns.view")
@require_GET
def broadcast_templates(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """The template picker for the chosen channel (its kind's templates)."""
    channel_id = to_int(request.GET.get("channel_id"))
    channel = ChannelConfig.objects.filter(workspace=workspace, pk=channel_id).first()
    context = {
        "channel": channel,
        "templates": _templates_for(workspace, channel),
        "form": {"template_id": to_int(request.GET.get("template_id"))},
        "errors": {},
    }
    return render_ws(request, "console/campaigns/_template_field.html", context)


@workspace_view("campaigns.view")
@require_GET
def broadcast_preview(
    request: HttpRequest, workspace: Workspace, actor: Actor, broadcast_id: int
) -> HttpResponse:
    """The saved draft's audience through the guardrails, counted now (writes nothing)."""
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    context = {"broadcast": broadcast, "funnel": funnel_rows(planner.preview(broadcast))}
    return render_ws(request, "console/campaigns/_preview.html", context)


# --- the page -----------------------------------------------------------------------------


def local_time(workspace: Workspace, moment: datetime.datetime | None) -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment, zoneinfo.ZoneInfo(workspace.timezone)).strftime(
        "%Y-%m-%d %H:%M"
    )


def schedule_text(workspace: Workspace, broadcast: Broadcast) -> str:
    if broadcast.send_at is None:
        return _("Sent at once") if broadcast.status != BroadcastStatus.DRAFT else ""
    return schedule_words(workspace, broadcast.send_at, broadcast.recurrence, broadcast.weekdays)


def schedule_words(
    workspace: Workspace, send_at: datetime.datetime, recurrence: str, weekdays: list[int]
) -> str:
    """ "At 2026-05-01 10:00", "Every day at 10:00, from …", "Every week on Mon、Wed at …"."""
    first = local_time(workspace, send_at)
    if not recurrence:
        return _("At %(time)s") % {"time": first}
    clock = first[-5:]
    if recurrence == "weekly":
        days = "、".join(str(name) for day, name in WEEKDAYS if day in weekdays)
        return _("Every week on %(days)s at %(clock)s, from %(first)s") % {
            "days": days,
            "clock": clock,
            "first": first[:10],
        }
    return _("Every day at %(clock)s, from %(first)s") % {"clock": clock, "first": first[:10]}


def _default_schedule(workspace: Workspace) -> dict[str, Any]:
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    tomorrow = (timezone.now().astimezone(tz) + datetime.timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    return {"when": "now", "send_at": tomorrow.strftime("%Y-%m-%dT%H:%M"), "recurrence": ""}


def broadcast_page(
    request: HttpRequest,
    workspace: Workspace,
    broadcast: Broadcast | None,
    *,
    composer: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
    schedule_errors: dict[str, str] | None = None,
    send_error: str = "",
    status: int = 200,
) -> HttpResponse:
    manage = can(request.actor, "campaigns.manage")
    context: dict[str, Any] = {"broadcast": broadcast, "send_error": send_error}
    if broadcast is None:
        context["composer"] = composer
        return render_ws(request, "console/campaigns/broadcast.html", context, status=status)
    editable = manage and broadcast.status in EDITABLE
    if editable and composer is None:
        composer = composer_context(workspace, _stored(broadcast))
    runs = list(broadcast.runs.order_by("-number"))
    chosen = to_int(request.GET.get("run"))
    run = next((r for r in runs if r.number == chosen), runs[0] if runs else None)
    names = _segment_names(workspace, [broadcast])
    context.update(
        status_label=label(BROADCAST_STATUS, broadcast.status),
        status_badge=BROADCAST_BADGES.get(broadcast.status, ""),
        composer=composer if editable else None,
        summary={
            "channel_kind": kind_label(broadcast.channel.kind),
            "include": [names.get(i, _("(missing)")) for i in broadcast.include_segments],
            "exclude": [names.get(i, _("(missing)")) for i in broadcast.exclude_segments],
            "schedule": schedule_text(workspace, broadcast),
            "next_run": local_time(workspace, broadcast.next_run_at),
        },
        can_send=manage and broadcast.status == BroadcastStatus.DRAFT,
        can_cancel=manage and broadcast.status in CANCELLABLE,
        schedule={**_default_schedule(workspace), **(schedule or {})},
        schedule_errors=schedule_errors or {},
        recurrences=[(code, str(name)) for code, name in RECURRENCE.items()],
        weekdays=[(day, str(name)) for day, name in WEEKDAYS],
        runs=[
            {
                "run": r,
                "suppressed": sum((r.counts.get("suppressed") or {}).values()),
                "chosen": run is not None and r.pk == run.pk,
            }
            for r in runs
        ],
        report=run_context(run) if run else None,
    )
    return render_ws(request, "console/campaigns/broadcast.html", context, status=status)


@workspace_view("campaigns.view")
@require_GET
def broadcast_detail(
    request: HttpRequest, workspace: Workspace, actor: Actor, broadcast_id: int
) -> HttpResponse:
    return broadcast_page(request, workspace, queries.get_broadcast_for(workspace, broadcast_id))

"""旅程: the list, and the builder. The builder draws the graph (trigger on top, steps below,
branches side by side) from the graph JSON the page carries in a hidden field; every click
(choose a step, add one into a slot, delete one, add a filter row) posts that JSON with the
side panel's fields to `journey_flow`, which returns the redrawn builder. Saving posts it
to journey_create / journey_update; an error's path marks the step it is about. Activate,
pause and archive are their own small forms."""

import json
from typing import Any

from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from siyu.accounts.access import can
from siyu.campaigns import journey_actions as actions
from siyu.campaigns.journey_graph import validate_graph
from siyu.campaigns.journey_models import Journey, JourneyEnrollment, JourneyStatus, JourneyVersion
from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import render_ws, to_int
from siyu.console.views import campaigns_journey_edit as edit
from siyu.console.views.campaigns_flow import Lookup, flow_layout
from siyu.console.views.campaigns_journey_panel import graph_error, panel_context
from siyu.console.views.campaigns_labels import JOURNEY_BADGES, JOURNEY_STATUS, label
from siyu.console.views.messaging_fields import place_error
from siyu.console.views.segments_builder import recent_event_names
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, SiyuError, ValidationError
from siyu.core.models import Workspace

SETTINGS = ("name", "reentry_days", "goal_event", "attribution_days", "holdout_percent")
NEW_JOURNEY = {
    "name": "",
    "reentry": "once",
    "reentry_days": "",
    "goal_event": "Order Completed",
    "attribution_days": 7,
    "holdout_percent": 10,
}


def get_journey(workspace: Workspace, journey_id: int) -> Journey:
    journey = (
        Journey.objects.filter(workspace=workspace, pk=journey_id)
        .select_related("live_version")
        .first()
    )
    if journey is None:
        raise NotFound("no such journey")
    return journey


def _latest(journey: Journey) -> JourneyVersion | None:
    return journey.versions.order_by("-number").first()


# --- the list -----------------------------------------------------------------------------


@workspace_view("campaigns.view")
@require_GET
def journey_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    latest = JourneyVersion.objects.filter(journey=OuterRef("pk")).order_by("-number")
    journeys = list(
        Journey.objects.filter(workspace=workspace)
        .select_related("live_version")
        .annotate(latest_id=Subquery(latest.values("pk")[:1]))
        .order_by("-id")[:200]
    )
    versions = JourneyVersion.objects.in_bulk([j.latest_id for j in journeys if j.latest_id])
    walks: dict[int, dict[str, int]] = {}
    counted = (
        JourneyEnrollment.objects.filter(workspace=workspace, journey__in=journeys)
        .values("journey_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in counted:
        walks.setdefault(row["journey_id"], {})[row["status"]] = row["n"]
    lookup = Lookup(workspace)
    rows = []
    for journey in journeys:
        shown = journey.live_version or versions.get(journey.latest_id)
        rows.append(
            {
                "journey": journey,
                "status_label": label(JOURNEY_STATUS, journey.status),
                "badge": JOURNEY_BADGES.get(journey.status, ""),
                "trigger": lookup.trigger_text(shown.graph.get("trigger")) if shown else "",
                "walks": walks.get(journey.pk, {}),
                "live": journey.live_version.number if journey.live_version else None,
                "latest": versions[journey.latest_id].number if journey.latest_id else None,
            }
        )
    return render_ws(request, "console/campaigns/journeys.html", {"rows": rows})


# --- the builder --------------------------------------------------------------------------


def _editable(actor: Actor, journey: Journey | None) -> bool:
    archived = journey is not None and journey.status == JourneyStatus.ARCHIVED
    return can(actor, "campaigns.manage") and not archived


def _check(workspace: Workspace, graph: dict) -> dict | None:
    """The first problem of the graph as drawn, shown on its step before saving."""
    try:
        validate_graph(workspace, graph)
    except ValidationError as exc:
        return graph_error(exc, graph)
    return None


def builder_context(
    workspace: Workspace,
    graph: dict,
    panel: str,
    editable: bool,
    error: dict | None,
    lookup: Lookup | None = None,
) -> dict[str, Any]:
    lookup = lookup or Lookup(workspace)
    if panel != edit.TRIGGER and panel not in graph["steps"]:
        panel = ""
    return {
        "graph_json": json.dumps(graph, ensure_ascii=False),
        "panel": panel,
        "editable": editable,
        "flow": flow_layout(graph, lookup, editable=editable, selected=panel, error=error),
        "panel_ctx": panel_context(workspace, graph, panel, lookup, error),
        "graph_error": error if error and not error["step"] else None,
    }


def _settings_form(journey: Journey | None, post: QueryDict | None = None) -> dict[str, Any]:
    if post is not None:
        return {
            "name": post.get("name", ""),
            "reentry": "again" if post.get("reentry") == "again" else "once",
            "reentry_days": post.get("reentry_days", ""),
            "goal_event": post.get("goal_event", ""),
            "attribution_days": post.get("attribution_days", ""),
            "holdout_percent": post.get("holdout_percent", ""),
        }
    if journey is None:
        return dict(NEW_JOURNEY)
    return {
        "name": journey.name,
        "reentry": "once" if journey.reentry_days is None else "again",
        "reentry_days": journey.reentry_days or "",
        "goal_event": journey.goal_event,
        "attribution_days": journey.attribution_days,
        "holdout_percent": f"{journey.holdout_percent.normalize():f}",
    }


def _settings_values(form: dict[str, Any]) -> dict[str, Any]:
    """The settings for the action, numbers as numbers (anything else as typed, so that the
    action names the field)."""

    def number(value: Any) -> Any:
        return to_int(value) if to_int(value) is not None else value

    return {
        "name": form["name"],
        "reentry_days": number(form["reentry_days"]) if form["reentry"] == "again" else None,
        "goal_event": form["goal_event"],
        "attribution_days": number(form["attribution_days"]),
        "holdout_percent": form["holdout_percent"] or 0,
    }


def _page(
    request: HttpRequest,
    workspace: Workspace,
    journey: Journey | None,
    graph: dict,
    *,
    form: dict[str, Any] | None = None,
    panel: str = "",
    error: dict | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    editable = _editable(request.actor, journey)
    latest = _latest(journey) if journey else None
    context = {
        "journey": journey,
        "status_label": label(JOURNEY_STATUS, journey.status if journey else "draft"),
        "status_badge": JOURNEY_BADGES.get(journey.status, "") if journey else "",
        "latest": latest,
        "form": form or _settings_form(journey),
        "errors": errors or {},
        "events": recent_event_names(workspace),
        "builder": builder_context(
            workspace, graph, panel, editable, error or _check(workspace, graph)
        ),
    }
    return render_ws(request, "console/campaigns/journey_builder.html", context, status=status)


def _posted_graph(request: HttpRequest, lookup: Lookup) -> tuple[dict, str]:
    graph = edit.parse_graph(request.POST.get("graph", ""))
    panel = request.POST.get("panel", "")
    return edit.apply_panel(graph, panel, request.POST, lookup), panel


def _save(
    request: HttpRequest, workspace: Workspace, actor: Actor, journey: Journey | None
) -> HttpResponse:
    graph, panel = _posted_graph(request, Lookup(workspace))
    form = _settings_form(journey, request.POST)
    try:
        if journey is None:
            journey = actions.journey_create(
                workspace=workspace, actor=actor, graph=graph, **_settings_values(form)
            )
            messages.success(request, _("Journey created as a draft: activate it when ready."))
        else:
            latest = _latest(journey)
            changed = latest is None or latest.graph != graph  # an unchanged graph: no version
            live = journey.status != JourneyStatus.DRAFT
            journey = actions.journey_update(
                workspace=workspace,
                actor=actor,
                journey=journey,
                graph=graph if changed else None,
                **_settings_values(form),
            )
            if changed and live:
                number = _latest(journey).number
                messages.success(
                    request,
                    _(
                        "Version %(n)s published: new entries take it, people inside keep "
                        "the version they entered."
                    )
                    % {"n": number},
                )
            else:
                messages.success(request, _("Journey saved."))
    except SiyuError as exc:
        in_graph = isinstance(exc, ValidationError) and exc.field.startswith("graph")
        error = graph_error(exc, graph) if in_graph else None
        errors = {} if in_graph else place_error(exc, SETTINGS)
        return _page(
            request,
            workspace,
            journey,
            graph,
            form=form,
            panel=error["step"] if error and error["step"] else panel,
            error=error,
            errors=errors,
            status=exc.status,
        )
    return redirect("console:journey", workspace.slug, journey.pk)


@workspace_view("campaigns.manage")
@require_http_methods(["GET", "POST"])
def journey_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    if request.method == "POST":
        return _save(request, workspace, actor, None)
    graph = edit.starter_graph(Lookup(workspace))
    return _page(request, workspace, None, graph, panel=graph["start"])


@workspace_view("campaigns.view")
@require_http_methods(["GET", "POST"])
def journey_builder(
    request: HttpRequest, workspace: Workspace, actor: Actor, journey_id: int
) -> HttpResponse:
    journey = get_journey(workspace, journey_id)
    if request.method == "POST":
        if not can(actor, "campaigns.manage"):
            return render_ws(
                request, "console/forbidden.html", {"perm": "campaigns.manage"}, status=403
            )
        return _save(request, workspace, actor, journey)
    latest = _latest(journey)
    graph = latest.graph if latest else edit.parse_graph("")
    return _page(request, workspace, journey, graph)


@workspace_view("campaigns.view")
@require_POST
def journey_flow(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """One edit of the drawing (writes nothing): op = select, add, delete, apply, close,
    filter_add / filter_remove, branch_add / branch_remove. Viewers may only look."""
    lookup = Lookup(workspace)
    editable = can(actor, "campaigns.manage") and request.POST.get("editable") == "1"
    graph = edit.parse_graph(request.POST.get("graph", ""))
    panel = request.POST.get("panel", "")
    if editable:
        graph = edit.apply_panel(graph, panel, request.POST, lookup)
    op, target = request.POST.get("op", ""), request.POST.get("step", "")
    index = to_int(request.POST.get("index"))
    if op == "select":
        panel = target
    elif op == "close":
        panel = ""
    elif editable and op == "add":
        graph, added = edit.add_step(
            graph,
            request.POST.get("after", ""),
            request.POST.get("slot", ""),
            request.POST.get("type", ""),
            lookup,
        )
        panel = added or panel
    elif editable and op == "delete":
        graph = edit.delete_step(graph, target)
    elif editable and op == "filter_add":
        graph = edit.add_filter(graph, panel)
    elif editable and op == "filter_remove":
        graph = edit.remove_filter(graph, panel, index)
    elif editable and op == "branch_add":
        graph = edit.add_branch(graph, panel)
    elif editable and op == "branch_remove":
        graph = edit.remove_branch(graph, panel, index)
    context = {
        "builder": builder_context(
            workspace, graph, panel, editable, _check(workspace, graph), lookup
        )
    }
    return render_ws(request, "console/campaigns/_journey_builder.html", context)


@workspace_view("campaigns.manage")
@require_POST
def journey_status(
    request: HttpRequest, workspace: Workspace, actor: Actor, journey_id: int
) -> HttpResponse:
    journey = get_journey(workspace, journey_id)
    status = request.POST.get("status", "")
    try:
        actions.journey_set_status(workspace=workspace, actor=actor, journey=journey, status=status)
    except SiyuError as exc:
        messages.error(request, error_text(exc))
        return redirect("console:journey", workspace.slug, journey.pk)
    done = {
        JourneyStatus.ACTIVE: _("Journey active: contacts who meet the trigger enter from now on."),
        JourneyStatus.PAUSED: _("Journey paused: people inside stop where they are."),
        JourneyStatus.ARCHIVED: _("Journey archived: everyone inside has exited."),
    }
    messages.success(request, done[status])
    return redirect("console:journey", workspace.slug, journey.pk)

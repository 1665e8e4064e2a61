"""Segments (分群): the list with each segment's size trend, and one segment's page with its
rule in words, size chart, entered / exited history and members (agents: their own
contacts), plus refresh and archive."""

import datetime
import zoneinfo
from typing import Any

from django.contrib import messages
from django.db.models import Max
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.accounts.permissions import is_own_only
from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import invalid, is_partial, render_ws, to_int
from siyu.console.views.segments_text import rule_text
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace
from siyu.segments import actions, queries
from siyu.segments.models import Segment, SegmentKind, SegmentSize

PAGE_SIZE = 50
MEMBERS_PAGE = 25
CHANGES_PAGE = 20
TREND_DAYS = 30
BUILTIN_ORDER = {key: i for i, (key, _name, _rule) in enumerate(actions.BUILTINS)}


# --- the list ------------------------------------------------------------------------------


def sparkline(values: list[int], width: int = 120, height: int = 28) -> str:
    """SVG polyline points for a small trend line (empty when there is nothing to draw)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = width / (len(values) - 1)
    pad = 2
    points = [
        f"{i * step:.1f},{pad + (height - 2 * pad) * (1 - (v - low) / span):.1f}"
        for i, v in enumerate(values)
    ]
    return " ".join(points)


def daily_sizes(workspace: Workspace, ids: list[int], days: int = TREND_DAYS) -> dict[int, list]:
    """Each segment's size at the end of each day with a size row, over the last `days`: one
    grouped query for the ids of the day's last rows, one for their sizes."""
    if not ids:
        return {}
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    since = timezone.now() - datetime.timedelta(days=days)
    last_of_day = (
        SegmentSize.objects.filter(workspace=workspace, segment_id__in=ids, at__gte=since)
        .annotate(day=TruncDate("at", tzinfo=tz))
        .values("segment_id", "day")
        .annotate(last=Max("id"))
        .values("last")
    )
    out: dict[int, list] = {}
    rows = SegmentSize.objects.filter(pk__in=last_of_day).order_by("segment_id", "at")
    for segment_id, size in rows.values_list("segment_id", "size"):
        out.setdefault(segment_id, []).append(size)
    return out


@workspace_view("segments.view")
@require_GET
def segment_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    tab = "builtin" if request.GET.get("tab") == "builtin" else "custom"
    every = queries.segments(workspace)
    custom, builtin = every.exclude(kind=SegmentKind.BUILTIN), every.filter(kind="builtin")
    before = to_int(request.GET.get("before"))
    if tab == "builtin":
        rows = sorted(builtin, key=lambda s: (BUILTIN_ORDER.get(s.builtin_key, 999), s.pk))
        next_before = None
    else:
        qs = custom.order_by("-id")
        if before:
            qs = qs.filter(pk__lt=before)
        rows = list(qs[: PAGE_SIZE + 1])
        next_before = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
        rows = rows[:PAGE_SIZE]
    own_only = is_own_only(actor.role)  # agents: sizes over their own contacts, no trends
    rows = queries.hide_others(workspace, actor, list(rows))
    trends = {} if own_only else daily_sizes(workspace, [s.pk for s in rows])
    for segment in rows:
        segment.spark = sparkline(trends.get(segment.pk, []))
    context = {
        "tab": tab,
        "rows": rows,
        "custom_count": custom.count(),
        "builtin_count": builtin.count(),
        "before": before,
        "next_before": next_before,
    }
    return render_ws(request, "console/segments/list.html", context)


# --- one segment ---------------------------------------------------------------------------


def _paged(fetch, cursor: str, limit: int) -> tuple[list, str | None, bool]:
    """A page from `fetch(cursor, limit)`; a stale or edited cursor shows the first page."""
    try:
        rows, next_cursor = fetch(cursor, limit)
        return rows, next_cursor, False
    except SiyuError:
        rows, next_cursor = fetch("", limit)
        return rows, next_cursor, True


def members_context(request: HttpRequest, workspace, actor, segment) -> dict[str, Any]:
    cursor = request.GET.get("mc", "")
    rows, next_cursor, stale = _paged(
        lambda c, n: queries.member_page(workspace, actor, segment, c, n), cursor, MEMBERS_PAGE
    )
    return {
        "members": rows,
        "members_cursor": cursor if not stale else "",
        "members_next": next_cursor,
        "members_stale": stale,
        "own_only": is_own_only(actor.role),
    }


def changes_context(request: HttpRequest, workspace, actor, segment) -> dict[str, Any]:
    cursor = request.GET.get("cc", "")
    rows, next_cursor, stale = _paged(
        lambda c, n: queries.change_page(workspace, actor, segment, c, n), cursor, CHANGES_PAGE
    )
    return {
        "changes": rows,
        "changes_cursor": cursor if not stale else "",
        "changes_next": next_cursor,
        "changes_stale": stale,
    }


def detail_page(
    request: HttpRequest,
    workspace: Workspace,
    actor: Actor,
    segment: Segment,
    errors: dict[str, SiyuError] | None = None,
    status: int = 200,
) -> HttpResponse:
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    own_only = is_own_only(actor.role)  # agents: the size over their own contacts, no trend
    queries.hide_others(workspace, actor, [segment])
    history = [
        {"at": row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), "size": row.size}
        for row in ([] if own_only else queries.size_history(segment))
    ]
    context = {
        "segment": segment,
        "rule_text": rule_text(workspace, segment.rule) if segment.kind != "static" else "",
        "history": history,
        "errors": {slot: error_text(exc) for slot, exc in (errors or {}).items()},
        **members_context(request, workspace, actor, segment),
        **changes_context(request, workspace, actor, segment),
    }
    return render_ws(request, "console/segments/detail.html", context, status=status)


@workspace_view("segments.view")
@require_GET
def segment_detail(
    request: HttpRequest, workspace: Workspace, actor: Actor, segment_id: int
) -> HttpResponse:
    segment = queries.get_segment_for(workspace, segment_id)
    if is_partial(request, "segment-members"):
        context = {"segment": segment, **members_context(request, workspace, actor, segment)}
        return render_ws(request, "console/segments/_members.html", context)
    if is_partial(request, "segment-changes"):
        context = {"segment": segment, **changes_context(request, workspace, actor, segment)}
        return render_ws(request, "console/segments/_changes.html", context)
    return detail_page(request, workspace, actor, segment)


@workspace_view("segments.manage")
@require_POST
def segment_refresh(
    request: HttpRequest, workspace: Workspace, actor: Actor, segment_id: int
) -> HttpResponse:
    segment = queries.get_segment_for(workspace, segment_id)
    counts = actions.segment_refresh(workspace=workspace, segment=segment)
    messages.success(
        request,
        _("Refreshed: %(entered)s entered, %(exited)s left, %(size)s contacts now.") % counts,
    )
    return redirect("console:segment", workspace.slug, segment.pk)


@workspace_view("segments.manage")
@require_POST
def segment_archive(
    request: HttpRequest, workspace: Workspace, actor: Actor, segment_id: int
) -> HttpResponse:
    segment = queries.get_segment_for(workspace, segment_id)
    try:
        if not request.POST.get("confirm"):
            raise invalid(_("Tick the box to confirm archiving."))
        actions.segment_archive(workspace=workspace, actor=actor, segment=segment)
    except SiyuError as exc:
        errors = {"archive": exc}
        return detail_page(request, workspace, actor, segment, errors, status=exc.status)
    messages.success(request, _("Segment %(name)s archived.") % {"name": segment.name})
    return redirect("console:segments", workspace.slug)

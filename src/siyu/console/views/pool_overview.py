"""客户分层: the pool by lifecycle stage and value tier (and RFM), the stage × tier matrix,
the moves between stages (or tiers) over the last 30 days, and a recompute button."""

from collections import Counter
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.segments.models import (
    LifecycleStage,
    RefreshSchedule,
    RfmSegment,
    Segment,
    SegmentKind,
    ValueTier,
)
from siyu.segments.queries import clv_summary
from siyu.segments.scores_queries import stage_flows, stage_overview

FLOW_DAYS = 30
DIMENSIONS = {"stage": LifecycleStage, "tier": ValueTier}


def _builtin_ids(workspace: Workspace) -> dict[str, int]:
    rows = Segment.objects.filter(
        workspace=workspace, kind=SegmentKind.BUILTIN, archived_at__isnull=True
    ).values_list("builtin_key", "pk")
    return dict(rows)


def flow_summary(workspace: Workspace, dimension: str, days: int = FLOW_DAYS) -> dict[str, Any]:
    """The moves of the last `days` summed per (from, to), largest first, with labels, and
    the Sankey's nodes and links (sources and targets are distinct nodes: a chart of moves
    back and forth has no cycles)."""
    labels = dict(DIMENSIONS[dimension].choices)
    first = _("First scored")
    totals: Counter = Counter()
    for row in stage_flows(workspace, days, dimension):
        totals[(row["from"], row["to"])] += row["count"]
    moves = [
        {
            "from": src,
            "to": dst,
            "from_label": labels.get(src, first) if src else first,
            "to_label": labels.get(dst, dst),
            "count": n,
        }
        for (src, dst), n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    nodes: dict[str, str] = {}
    links = []
    for move in moves:
        source, target = f"from:{move['from']}", f"to:{move['to']}"
        nodes.setdefault(source, move["from_label"])
        nodes.setdefault(target, move["to_label"])
        links.append({"source": source, "target": target, "value": move["count"]})
    return {
        "moves": moves,
        "total": sum(totals.values()),
        "sankey": {
            "nodes": [{"name": key, "label": label} for key, label in nodes.items()],
            "links": links,
        },
    }


@workspace_view("segments.view")
@require_GET
def pool_overview(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    data = stage_overview(workspace)
    builtins = _builtin_ids(workspace)
    dimension = "tier" if request.GET.get("flows") == "tier" else "stage"
    stages = [
        {"key": k, "label": label, "n": data["stages"][k], "segment": builtins.get(f"stage:{k}")}
        for k, label in LifecycleStage.choices
    ]
    tiers = [
        {"key": k, "label": label, "n": data["tiers"][k], "segment": builtins.get(f"tier:{k}")}
        for k, label in ValueTier.choices
    ]
    matrix = [
        {
            **stage,
            "cells": [
                {"tier": t["key"], "n": data["matrix"][stage["key"]][t["key"]]} for t in tiers
            ],
        }
        for stage in stages
    ]
    rfm = [
        {"key": k, "label": label, "n": data["rfm"][k], "segment": builtins.get(f"rfm:{k}")}
        for k, label in RfmSegment.choices
    ]
    schedule = RefreshSchedule.objects.filter(workspace=workspace).first()
    last = schedule.last_refresh if schedule and isinstance(schedule.last_refresh, dict) else {}
    context = {
        "data": data,
        "stages": stages,
        "tiers": tiers,
        "matrix": matrix,
        "rfm": rfm,
        "flows": flow_summary(workspace, dimension),
        "dimension": dimension,
        "flow_days": FLOW_DAYS,
        "last_refresh_at": parse_datetime(last.get("at") or "") if last else None,
        "clv": clv_summary(workspace),
        "charts": {
            "stages": [{"name": str(s["label"]), "value": s["n"]} for s in stages],
            "tiers": [{"name": str(t["label"]), "value": t["n"]} for t in tiers],
        },
    }
    return render_ws(request, "console/segments/overview.html", context)


@workspace_view("scoring.manage")
@require_POST
def pool_recompute(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """Scores and every rule-based segment, recomputed by the worker (a task)."""
    from siyu.segments.tasks import refresh_segments

    refresh_segments.enqueue(workspace.pk)
    messages.success(
        request,
        _("Recalculation started. Stages, tiers and segments update within a few minutes."),
    )
    return redirect("console:pool_overview", workspace.slug)


@workspace_view("scoring.manage")
@require_POST
def clv_refit(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """Refit the lifetime-value model now (a task; it runs nightly anyway)."""
    from siyu.segments.tasks import fit_clv

    fit_clv.enqueue(workspace.pk, f"console: {actor.label}")
    messages.success(request, _("Refitting the lifetime value model; it takes a minute or two."))
    return redirect("console:pool_overview", workspace.slug)

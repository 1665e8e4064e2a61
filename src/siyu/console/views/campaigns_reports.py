"""Reports of campaigns: a broadcast run (its funnel, messages by status and reason, and the
conversion of the targeted against the holdout) and a journey (contacts per step of the live
version, walks by status, each message step's messages, the goal conversion). The numbers
come from campaigns.reports / journey_reports; this module only puts them in words."""

import math
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from siyu.campaigns import queries, reports
from siyu.campaigns.journey_reports import journey_report
from siyu.campaigns.models import BroadcastRun
from siyu.console.access import workspace_view
from siyu.console.helpers import is_partial, render_ws
from siyu.console.views.campaigns_flow import Lookup, flow_layout
from siyu.console.views.campaigns_journeys import get_journey
from siyu.console.views.campaigns_labels import (
    FUNNEL,
    GROUPS,
    JOURNEY_BADGES,
    JOURNEY_STATUS,
    VERDICTS,
    WALK_STATUS,
    label,
)
from siyu.console.views.messaging_fields import (
    STATUS_BADGES,
    STATUS_LABELS,
    reason_label,
    status_label,
)
from siyu.core.audit import Actor
from siyu.core.models import Workspace

Z95 = reports.Z95
# below this many members in either group the interval says little: no verdict
MIN_GROUP = 30
GUARDRAILS = ("no_consent", "no_address")


# --- the funnel ---------------------------------------------------------------------------


def funnel_rows(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """入选 → 排除后 → 对照组 → each guardrail → 将发送, as rows of a bar list (what a step
    takes away is marked `minus`). Frequency caps are summed, each cap listed under it."""
    suppressed = dict(counts.get("suppressed") or {})
    rows: list[dict[str, Any]] = []

    def add(key: str, n: int, kind: str = "", details=None) -> None:
        rows.append({"key": key, "label": label(FUNNEL, key), "n": n, "kind": kind})
        rows[-1]["details"] = details or []

    if "included" in counts:
        add("included", counts["included"])
    add("audience", counts.get("audience", 0))
    add("holdout", counts.get("holdout", 0), "minus")
    for reason in GUARDRAILS:
        add(reason, suppressed.pop(reason, 0), "minus")
    caps = {r: n for r, n in suppressed.items() if r.startswith("frequency_cap")}
    details = [{"label": reason_label(r), "n": n} for r, n in sorted(caps.items())]
    add("frequency_cap", sum(caps.values()), "minus", details)
    for reason, n in sorted(suppressed.items()):  # a guardrail this page does not know yet
        if reason not in caps:
            rows.append({"key": reason, "label": reason_label(reason), "n": n, "kind": "minus"})
            rows[-1]["details"] = []
    add("to_send", counts.get("to_send", 0), "result")
    top = max([r["n"] for r in rows] + [1])
    for row in rows:
        row["width"] = f"{100 * row['n'] / top:.1f}"  # a CSS width, never localised
    return rows


# --- messages -----------------------------------------------------------------------------


def message_rows(messages: dict[str, Any]) -> dict[str, Any]:
    by_status = messages.get("by_status") or {}
    statuses = [
        {"status": s, "label": status_label(s), "badge": STATUS_BADGES.get(s, ""), "n": n}
        for s, n in sorted(by_status.items(), key=lambda kv: _status_order(kv[0]))
    ]
    reasons = [
        {"reason": r, "label": reason_label(r), "n": n}
        for r, n in sorted((messages.get("by_reason") or {}).items(), key=lambda kv: -kv[1])
    ]
    return {"statuses": statuses, "reasons": reasons, "total": sum(by_status.values())}


def _status_order(status: str) -> int:
    order = list(STATUS_LABELS)
    return order.index(status) if status in order else len(order)


# --- conversion ---------------------------------------------------------------------------


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def _yuan(fen: int | None) -> str | None:
    return None if fen is None else f"{fen / 100:,.2f}"


def _group_interval(n: int, converted: int) -> tuple[float, float] | None:
    """One group's own 95% interval of its rate (Wald, as the uplift's), for the error bar."""
    if not n:
        return None
    p = converted / n
    half = Z95 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def conversion_view(conversion: dict[str, Any]) -> dict[str, Any]:
    """Both groups with rates in %, revenue in 元, the uplift in percentage points with its
    95% interval, a verdict (显著提升 / 差异不显著 / 样本过少) and the chart's data."""
    groups = []
    for key in ("targeted", "holdout"):
        arm = conversion[key]
        interval = _group_interval(arm["n"], arm["converted"])
        groups.append(
            {
                "key": key,
                "label": label(GROUPS, key),
                "n": arm["n"],
                "converted": arm["converted"],
                "rate": _pct(arm.get("rate")),
                "low": _pct(interval[0]) if interval else None,
                "high": _pct(interval[1]) if interval else None,
                "revenue": _yuan(arm.get("revenue_fen")),
                "per_member": _yuan(arm.get("revenue_per_member_fen")),
            }
        )
    uplift = conversion.get("uplift")
    smallest = min(g["n"] for g in groups)
    if uplift is None or smallest < MIN_GROUP:
        verdict = "too_few"
    elif uplift["significant"]:
        verdict = "lift" if uplift["absolute"] > 0 else "drop"
    else:
        verdict = "flat"
    shown = None
    if uplift is not None:
        shown = {
            "points": f"{100 * uplift['absolute']:+.1f}",
            "low": f"{100 * uplift['ci95'][0]:+.1f}",
            "high": f"{100 * uplift['ci95'][1]:+.1f}",
            "relative": (
                f"{100 * uplift['relative']:+.0f}" if uplift.get("relative") is not None else None
            ),
        }
    return {
        "groups": groups,
        "has_revenue": "revenue_fen" in conversion["targeted"],
        "uplift": shown,
        "verdict": verdict,
        "verdict_label": str(VERDICTS[verdict]),
        "explanation": _explanation(verdict, shown, groups),
        "chart": {
            "categories": [g["label"] for g in groups],
            "rates": [g["rate"] if g["rate"] is not None else 0 for g in groups],
            "low": [g["low"] for g in groups],
            "high": [g["high"] for g in groups],
            "rate_label": _("Conversion rate (%)"),
        },
    }


def _explanation(verdict: str, shown: dict | None, groups: list[dict]) -> str:
    if shown is None:
        return _("Both the targeted and the holdout need members before they can be compared.")
    if verdict == "too_few":
        return _(
            "Each group needs at least %(min)s members for a verdict (targeted %(n1)s, "
            "holdout %(n2)s): read the interval, not the difference."
        ) % {"min": MIN_GROUP, "n1": groups[0]["n"], "n2": groups[1]["n"]}
    if verdict == "lift":
        return _(
            "The targeted converted more than the holdout, and the whole 95% interval is above "
            "zero: the message very likely made the difference."
        )
    if verdict == "drop":
        return _(
            "The targeted converted less than the holdout, and the whole 95% interval is below "
            "zero: the message very likely hurt."
        )
    return _(
        "The 95% interval includes zero: the difference may be chance. More members or a "
        "longer window would tell."
    )


# --- a broadcast run ----------------------------------------------------------------------


def run_context(run: BroadcastRun) -> dict[str, Any]:
    report = reports.run_report(run)
    return {
        "run": run,
        "window": report["window"],
        "funnel": funnel_rows(report["funnel"]),
        "message_counts": message_rows(report["messages"]),
        "conversion": conversion_view(report["conversion"]),
        "outbox_source": run.source,
    }


@workspace_view("campaigns.view")
@require_GET
def run_report(
    request: HttpRequest, workspace: Workspace, actor: Actor, broadcast_id: int, number: int
) -> HttpResponse:
    """The report partial for the broadcast page's htmx; a browser gets the page with it."""
    broadcast = queries.get_broadcast_for(workspace, broadcast_id)
    run = queries.get_run_for(broadcast, number)
    if not is_partial(request, "run-report"):
        url = reverse("console:broadcast", args=[workspace.slug, broadcast.pk])
        return redirect(f"{url}?run={run.number}")
    context = {"broadcast": broadcast, **run_context(run)}
    return render_ws(request, "console/campaigns/_run_report.html", context)


# --- a journey ----------------------------------------------------------------------------


@workspace_view("campaigns.view")
@require_GET
def journey_report_page(
    request: HttpRequest, workspace: Workspace, actor: Actor, journey_id: int
) -> HttpResponse:
    journey = get_journey(workspace, journey_id)
    report = journey_report(journey)
    version = journey.live_version
    entered = report["steps"].get(version.number, {}) if version else {}
    graph = version.graph if version else None
    lookup = Lookup(workspace) if graph else None
    walks = report["walks"]
    message_steps = [
        {
            "step": step_id,
            "summary": lookup.summary(graph["steps"][step_id]) if lookup else step_id,
            **message_rows(counts),
        }
        for step_id, counts in report["messages"].items()
    ]
    context = {
        "journey": journey,
        "status_label": label(JOURNEY_STATUS, journey.status),
        "status_badge": JOURNEY_BADGES.get(journey.status, ""),
        "version": version,
        "flow": flow_layout(graph, lookup, stats=entered) if graph else None,
        "trigger_text": lookup.trigger_text(graph["trigger"]) if lookup else "",
        "walks": [
            {"status": s, "label": label(WALK_STATUS, s), "n": walks.get(s, 0)} for s in WALK_STATUS
        ],
        "walk_total": sum(walks.values()),
        "message_steps": message_steps,
        "goal_event": journey.goal_event,
        "conversion": conversion_view(report["conversion"]),
        "other_versions": sorted(v for v in report["steps"] if not version or v != version.number),
    }
    return render_ws(request, "console/campaigns/journey_report.html", context)

"""The journey builder's side panel: what it shows for the trigger or the chosen step (the
step's fields, and the choices its pickers offer), and where a validation error of the
graph belongs (`graph.steps.wait1.duration.days` → the box of step wait1, field
duration.days)."""

import json
from typing import Any

from siyu.console.access import error_text
from siyu.console.helpers import tag_groups
from siyu.console.views.campaigns_flow import Lookup, ways_out
from siyu.console.views.campaigns_journey_edit import TRIGGER
from siyu.console.views.campaigns_labels import (
    DATE_FIELDS,
    FILTER_OPS,
    STEP_TYPES,
    TRIGGERS,
    WAIT_MODES,
    label,
)
from siyu.console.views.segments_builder import builder_config
from siyu.core.errors import SiyuError, ValidationError

UNITS = ("days", "hours", "minutes")


def graph_error(exc: SiyuError, graph: dict) -> dict[str, str]:
    """{"step": step id, TRIGGER or "", "field": the path inside it, "path", "message"}."""
    path = exc.field if isinstance(exc, ValidationError) else ""
    message = error_text(exc) if not path else exc.localized()
    out = {"step": "", "field": "", "path": path, "message": message}
    if path.startswith("graph.trigger"):
        out["step"], out["field"] = TRIGGER, path[len("graph.trigger") :].lstrip(".")
    elif path.startswith("graph.steps."):
        rest = path[len("graph.steps.") :]
        # step ids hold no dot or bracket: the id runs up to the first of them
        cut = min([i for i in (rest.find("."), rest.find("[")) if i >= 0] or [len(rest)])
        if rest[:cut] in graph.get("steps", {}):
            out["step"], out["field"] = rest[:cut], rest[cut:].lstrip(".")
    return out


def _filters(where: Any) -> list[dict[str, Any]]:
    rows = where if isinstance(where, list) else []
    return [
        {
            "index": n,
            "property": row.get("property", ""),
            "op": row.get("op", "eq"),
            "value": row.get("value", ""),
        }
        for n, row in enumerate(rows)
        if isinstance(row, dict)
    ]


def _units(spec: Any) -> dict[str, Any]:
    spec = spec if isinstance(spec, dict) else {}
    return {unit: spec.get(unit, "") for unit in UNITS}


def panel_context(
    workspace, graph: dict, panel: str, lookup: Lookup, error: dict | None
) -> dict[str, Any] | None:
    """What the side panel renders, or None when nothing is chosen."""
    mine = error if error and error.get("step") == panel and panel else None
    common = {
        "error": mine["message"] if mine else "",
        "error_field": mine["field"] if mine else "",
        "filter_ops": [(op, label(FILTER_OPS, op)) for op in FILTER_OPS],
    }
    if panel == TRIGGER:
        trigger = graph.get("trigger") if isinstance(graph.get("trigger"), dict) else {}
        date_fields = [(k, label(DATE_FIELDS, k)) for k in DATE_FIELDS]
        date_fields += [(f"attribute:{a.key}", a.label) for a in lookup.date_attributes()]
        return {
            **common,
            "kind": "trigger",
            "title": label(TRIGGERS, trigger.get("type", "")),
            "trigger": trigger,
            "types": [(k, label(TRIGGERS, k)) for k in TRIGGERS],
            "segments": lookup.segments,
            "date_fields": date_fields,
            "where": _filters(trigger.get("where")),
        }
    step = graph.get("steps", {}).get(panel)
    if not isinstance(step, dict):
        return None
    kind = step.get("type", "")
    context: dict[str, Any] = {
        **common,
        "kind": kind,
        "id": panel,
        "title": label(STEP_TYPES, kind),
        "step": step,
        "drops_paths": len(ways_out(step)) > 1,
        "delete_vals": json.dumps({"op": "delete", "step": panel}, ensure_ascii=False),
    }
    if kind == "wait":
        mode = next((m for m in ("until_time", "until_event") if m in step), "duration")
        wanted = step.get("until_event") if isinstance(step.get("until_event"), dict) else {}
        context.update(
            mode=mode,
            modes=[(m, label(WAIT_MODES, m)) for m in WAIT_MODES],
            duration=_units(step.get("duration") or {"days": 1}),
            until_time=step.get("until_time", "09:00"),
            event=wanted.get("event", ""),
            where=_filters(wanted.get("where")),
            timeout=_units(step.get("timeout") or {"days": 3}),
        )
    elif kind == "branch":
        rule_error = None
        if mine and mine["field"].startswith("rule"):
            rule_error = {"path": mine["field"], "message": mine["message"]}
        rule = step.get("rule") if isinstance(step.get("rule"), dict) else None
        context.update(
            rule_json=json.dumps(rule or {"type": "and", "rules": []}, ensure_ascii=False),
            config=builder_config(workspace, None, rule_error),
        )
    elif kind == "split":
        branches = step.get("branches") if isinstance(step.get("branches"), list) else []
        context["branches"] = [
            {"index": n, "letter": chr(65 + n), "percent": b.get("percent", "")}
            for n, b in enumerate(branches)
            if isinstance(b, dict)
        ]
    elif kind in ("send", "webhook"):
        webhook = kind == "webhook"
        channel = lookup.channel_by_id.get(step.get("channel_id"))
        context.update(
            channels=[c for c in lookup.channels if (c.kind == "webhook") == webhook],
            templates=lookup.templates_of(channel.kind) if channel else [],
            channel=channel,
        )
    elif kind == "tag":
        context.update(
            groups=tag_groups(workspace),
            added=set(step.get("add") or []),
            removed=set(step.get("remove") or []),
        )
    elif kind == "attribute":
        context.update(attributes=lookup.attributes, key=step.get("key", ""))
    return context

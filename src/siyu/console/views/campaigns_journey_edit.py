"""The journey builder's edits of the graph JSON (the page's only client-side state): apply
the side panel's fields to the step or trigger it edits, add a step into any slot, delete one
(its parents re-linked to what followed it), add or remove a split branch or a property
filter. Pure functions on a copy of the graph; journey_graph.validate_graph judges the
result, and journey_create / journey_update store it."""

import copy
import json
import re
from typing import Any

from django.http import QueryDict

from siyu.console.helpers import to_int
from siyu.console.views.campaigns_flow import ADDABLE, Lookup, ways_out

TRIGGER = "@trigger"  # the panel edits the trigger, not a step (no step id has an @)
FILTER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "contains", "exists")
_SLOT = re.compile(r"^(next|yes|no|timeout_next|branches\[(\d+)\]\.next)$")


def parse_graph(raw: str) -> dict[str, Any]:
    """The posted graph, or an empty one when it is not JSON (validation then names it)."""
    try:
        graph = json.loads(raw or "")
    except ValueError:
        graph = None
    if not isinstance(graph, dict):
        graph = {}
    if not isinstance(graph.get("trigger"), dict):
        graph["trigger"] = {}
    if not isinstance(graph.get("steps"), dict):
        graph["steps"] = {}
    for step_id, step in graph["steps"].items():
        if not isinstance(step, dict):  # only a tampered page sends this; validation names it
            graph["steps"][step_id] = {}
    return graph


def starter_graph(lookup: Lookup) -> dict[str, Any]:
    """A new journey: entering the first segment (or through the API), then one message."""
    trigger: dict[str, Any] = {"type": "api"}
    if lookup.segments:
        trigger = {"type": "segment_entered", "segment_id": lookup.segments[0].pk}
    return {"trigger": trigger, "start": "send1", "steps": {"send1": new_step("send", lookup)}}


def new_step(kind: str, lookup: Lookup) -> dict[str, Any]:
    """A step of `kind` with sensible defaults (the first channel, template, attribute)."""
    if kind in ("send", "webhook"):
        channels = [
            c
            for c in lookup.channels
            if (c.kind == "webhook") == (kind == "webhook") and lookup.templates_of(c.kind)
        ]
        channels.sort(key=lambda c: not c.enabled)  # an enabled channel first
        channel = channels[0] if channels else None
        template = lookup.templates_of(channel.kind)[0] if channel else None
        return {
            "type": kind,
            "channel_id": channel.pk if channel else None,
            "template_id": template.pk if template else None,
        }
    if kind == "wait":
        return {"type": "wait", "duration": {"days": 1}}
    if kind == "branch":
        return {"type": "branch", "rule": {"type": "and", "rules": []}, "yes": None, "no": None}
    if kind == "split":
        return {"type": "split", "branches": [{"percent": 50, "next": None} for _ in range(2)]}
    if kind == "tag":
        return {"type": "tag", "add": [], "remove": []}
    if kind == "attribute":
        first = lookup.attributes[0].key if lookup.attributes else ""
        return {"type": "attribute", "key": first, "value": ""}
    return {"type": "exit"}


def new_id(graph: dict, kind: str) -> str:
    n = 1
    while f"{kind}{n}" in graph["steps"]:
        n += 1
    return f"{kind}{n}"


# --- slots: the places a step id can sit ----------------------------------------------------


def _slot_owner(graph: dict, after: str, slot: str) -> tuple[dict, str] | None:
    """(the dict holding the slot, its key), or None for a slot that does not exist."""
    if not after:
        return (graph, "start") if slot == "start" else None
    step = graph["steps"].get(after)
    match = _SLOT.match(slot)
    if not isinstance(step, dict) or match is None:
        return None
    if match.group(2) is not None:
        branches = step.get("branches")
        index = int(match.group(2))
        if not isinstance(branches, list) or index >= len(branches):
            return None
        return (branches[index], "next") if isinstance(branches[index], dict) else None
    if (slot, step.get(slot)) not in [(s, t) for s, t, _label in ways_out(step)]:
        return None
    return step, slot


def _first_way_out(step: dict) -> tuple[dict, str] | None:
    kind = step["type"]
    if kind == "branch":
        return step, "yes"
    if kind == "split":
        return step["branches"][0], "next"
    if kind == "exit":
        return None
    return step, "next"


def add_step(graph: dict, after: str, slot: str, kind: str, lookup: Lookup) -> tuple[dict, str]:
    """Insert a new step into a slot; what was there follows the new step (for a branch on
    "yes", a split on its first branch). The graph and the new step's id ("" if refused)."""
    graph = copy.deepcopy(graph)
    owner = _slot_owner(graph, after, slot)
    if owner is None or kind not in ADDABLE:
        return graph, ""
    holder, key = owner
    following = holder.get(key)
    step_id = new_id(graph, kind)
    step = new_step(kind, lookup)
    out = _first_way_out(step)
    if out is not None:
        out[0][out[1]] = following
    graph["steps"][step_id] = step
    holder[key] = step_id
    return prune(graph), step_id


def delete_step(graph: dict, step_id: str) -> dict:
    """Remove a step; whatever led to it leads to its first way out. Paths only its other
    ways out reached go with it. The last step cannot go."""
    graph = copy.deepcopy(graph)
    steps = graph["steps"]
    if step_id not in steps or len(steps) == 1:
        return graph
    outs = ways_out(steps[step_id])
    following = outs[0][1] if outs else None
    if graph.get("start") == step_id:
        graph["start"] = following
    for other_id, other in steps.items():
        if other_id == step_id:
            continue
        for slot, target, _label in ways_out(other):
            owner = _slot_owner(graph, other_id, slot) if target == step_id else None
            if owner is not None:
                owner[0][owner[1]] = following
    del steps[step_id]
    if graph.get("start") not in steps:  # it ended where it started: keep the first left
        graph["start"] = next(iter(steps))
    return prune(graph)


def prune(graph: dict) -> dict:
    """Drop the steps no path from the start reaches any more (the builder draws only what
    is reachable, and the server refuses the rest)."""
    steps = graph["steps"]
    seen: set[str] = set()
    todo = [graph.get("start")]
    while todo:
        step_id = todo.pop()
        if step_id in seen or step_id not in steps:
            continue
        seen.add(step_id)
        todo.extend(target for _slot, target, _label in ways_out(steps[step_id]))
    for step_id in [s for s in steps if s not in seen]:
        del steps[step_id]
    return graph


# --- the side panel's fields ----------------------------------------------------------------


def _number(value: str) -> Any:
    """A whole number as typed, or the text itself so that validation names the field."""
    value = (value or "").strip()
    if not value:
        return None
    number = to_int(value)
    return number if number is not None else value


def _ids(values: list[str]) -> list[Any]:
    return [_number(v) for v in values if (v or "").strip()]


def _duration(post: QueryDict, prefix: str) -> dict[str, Any]:
    spec = {}
    for unit in ("days", "hours", "minutes"):
        value = _number(post.get(f"{prefix}{unit}", ""))
        if value is not None:
            spec[unit] = value
    return spec


def read_where(post: QueryDict) -> list[dict[str, Any]]:
    rows = zip(
        post.getlist("p.where.property"),
        post.getlist("p.where.op"),
        post.getlist("p.where.value"),
        strict=False,
    )
    where = []
    for prop, op, value in rows:
        row: dict[str, Any] = {"property": prop.strip(), "op": op}
        if op != "exists":
            row["value"] = value
        where.append(row)
    return where


def read_trigger(post: QueryDict) -> dict[str, Any]:
    kind = post.get("p.type", "")
    if kind in ("segment_entered", "segment_exited"):
        return {"type": kind, "segment_id": _number(post.get("p.segment_id", ""))}
    if kind == "event":
        return {"type": kind, "event": post.get("p.event", "").strip(), "where": read_where(post)}
    if kind == "date":
        offset = _number(post.get("p.offset_days", ""))
        return {
            "type": kind,
            "field": post.get("p.field", ""),
            "offset_days": 0 if offset is None else offset,
            "at": post.get("p.at", "").strip() or "09:00",
        }
    return {"type": "api"}


def read_step(current: dict, post: QueryDict, lookup: Lookup) -> dict[str, Any]:
    """The step as the panel says, keeping where it leads (the drawing edits that)."""
    kind = current.get("type")
    step: dict[str, Any] = {"type": kind}
    if kind == "wait":
        mode = post.get("p.mode", "duration")
        if mode == "until_time":
            step["until_time"] = post.get("p.until_time", "").strip()
        elif mode == "until_event":
            step["until_event"] = {"event": post.get("p.event", "").strip()}
            step["until_event"]["where"] = read_where(post)
            step["timeout"] = _duration(post, "p.timeout_")
            step["timeout_next"] = current.get("timeout_next")
        else:
            step["duration"] = _duration(post, "p.")
    elif kind == "branch":
        raw = post.get("p.rule", "")
        try:
            step["rule"] = json.loads(raw)
        except ValueError:
            step["rule"] = raw  # validation names the rule
        step["yes"], step["no"] = current.get("yes"), current.get("no")
    elif kind == "split":
        percents = post.getlist("p.percent")
        branches = current.get("branches") if isinstance(current.get("branches"), list) else []
        step["branches"] = [
            {
                "percent": _number(percents[n]) if n < len(percents) else b.get("percent"),
                "next": b.get("next"),
            }
            for n, b in enumerate(branches)
            if isinstance(b, dict)
        ]
    elif kind in ("send", "webhook"):
        step["channel_id"] = _number(post.get("p.channel_id", ""))
        step["template_id"] = _number(post.get("p.template_id", ""))
        channel = lookup.channel_by_id.get(step["channel_id"])
        template = lookup.template_by_id.get(step["template_id"])
        if channel is not None and (template is None or template.kind != channel.kind):
            # another channel was picked: its kind's first template
            choices = lookup.templates_of(channel.kind)
            step["template_id"] = choices[0].pk if choices else None
    elif kind == "tag":
        step["add"] = _ids(post.getlist("p.add"))
        step["remove"] = _ids(post.getlist("p.remove"))
    elif kind == "attribute":
        step["key"] = post.get("p.key", "")
        step["value"] = post.get("p.value", "")
    if kind not in ("branch", "split", "exit"):
        step["next"] = current.get("next")
    return step


def apply_panel(graph: dict, panel: str, post: QueryDict, lookup: Lookup) -> dict:
    """Fold the panel's fields into what it edits (nothing when no panel was open or its
    fields were not posted, as for a read-only viewer)."""
    if "p.kind" not in post:
        return graph
    graph = copy.deepcopy(graph)
    if panel == TRIGGER and post.get("p.kind") == "trigger":
        graph["trigger"] = read_trigger(post)
    elif isinstance(step := graph["steps"].get(panel), dict) and post.get("p.kind") == step.get(
        "type"
    ):
        graph["steps"][panel] = read_step(step, post, lookup)
    return prune(graph)


def add_filter(graph: dict, panel: str) -> dict:
    graph = copy.deepcopy(graph)
    target = _filters_of(graph, panel)
    if target is not None:
        target.append({"property": "", "op": "eq", "value": ""})
    return graph


def remove_filter(graph: dict, panel: str, index: int | None) -> dict:
    graph = copy.deepcopy(graph)
    target = _filters_of(graph, panel)
    if target is not None and index is not None and 0 <= index < len(target):
        del target[index]
    return graph


def _filters_of(graph: dict, panel: str) -> list | None:
    if panel == TRIGGER:
        holder = graph["trigger"] if graph["trigger"].get("type") == "event" else None
    else:
        step = graph["steps"].get(panel) or {}
        holder = step.get("until_event") if isinstance(step.get("until_event"), dict) else None
    if holder is None:
        return None
    if not isinstance(holder.get("where"), list):
        holder["where"] = []
    return holder["where"]


def add_branch(graph: dict, panel: str) -> dict:
    graph = copy.deepcopy(graph)
    step = graph["steps"].get(panel) or {}
    if step.get("type") == "split" and isinstance(step.get("branches"), list):
        step["branches"].append({"percent": 0, "next": None})
    return graph


def remove_branch(graph: dict, panel: str, index: int | None) -> dict:
    graph = copy.deepcopy(graph)
    step = graph["steps"].get(panel) or {}
    branches = step.get("branches") if step.get("type") == "split" else None
    if isinstance(branches, list) and len(branches) > 2 and index is not None:
        if 0 <= index < len(branches):
            del branches[index]
    return prune(graph)

"""A journey's graph: its trigger and its steps, checked before it is saved (422 naming the
path of the first problem, e.g. `graph.steps.wait1.duration.days`).

```
{"trigger": {"type": "segment_entered", "segment_id": 5},
 "start": "welcome",
 "steps": {
   "welcome": {"type": "send", "channel_id": 1, "template_id": 2, "next": "wait"},
   "wait":    {"type": "wait", "duration": {"days": 3}, "next": "bought?"},
   "bought?": {"type": "branch", "rule": {<segment rule>}, "yes": null, "no": "nudge"},
   "nudge":   {"type": "send", "channel_id": 1, "template_id": 3}}}
```

Triggers: `segment_entered` / `segment_exited` (segment_id), `event` (event, optional
`where` property filters), `date` (field `birthday`, `first_order` or `attribute:<key>` of a
date attribute; `offset_days`; the local time `at`), `api`. Steps: `wait` (a `duration`;
`until_time` of day; or `until_event` with a `timeout` and `timeout_next`), `branch` (a
segment rule; `yes` / `no`), `split` (`branches` of `percent` and `next`, summing to 100),
`send` and `webhook` (a channel and a template of its kind), `tag` (`add` / `remove` tag
ids), `attribute` (`key`, `value`), `exit`. A missing or null `next` ends the walk. The graph
must be acyclic and every step reachable from `start`."""

import datetime
import re
from typing import Any

from siyu.contacts.attributes import coerce_value, schema_for
from siyu.contacts.models import AttributeType, Tag
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.messaging.models import ChannelConfig, MessageTemplate
from siyu.segments.models import Segment
from siyu.segments.rules import RuleContext, validate_rule

MAX_STEPS = 100
STEP_ID = re.compile(r"^[A-Za-z0-9_?\-\u4e00-\u9fff]{1,40}$")
TRIGGERS = ("segment_entered", "segment_exited", "event", "date", "api")
STEPS = ("wait", "branch", "split", "send", "webhook", "tag", "attribute", "exit")
FILTER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "contains", "exists")
MAX_WAIT = datetime.timedelta(days=366)


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise ValidationError(path, "expected an object")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            path, "expected a whole number from %(low)s to %(high)s", {"low": low, "high": high}
        )
    return value


def _time(value: Any, path: str) -> str:
    try:
        return datetime.time.fromisoformat(value).strftime("%H:%M")
    except (TypeError, ValueError):
        raise ValidationError(path, "expected a time of day such as 09:30") from None


def duration(value: Any, path: str) -> datetime.timedelta:
    spec = _obj(value, path)
    for key in spec:
        if key not in ("days", "hours", "minutes"):
            raise ValidationError(f"{path}.{key}", "expected days, hours or minutes")
    delta = datetime.timedelta(
        days=_int(spec.get("days", 0), f"{path}.days", 0, 366),
        hours=_int(spec.get("hours", 0), f"{path}.hours", 0, 1000),
        minutes=_int(spec.get("minutes", 0), f"{path}.minutes", 0, 100_000),
    )
    if not datetime.timedelta(0) < delta <= MAX_WAIT:
        raise ValidationError(path, "expected more than nothing and at most a year")
    return delta


def _filters(value: Any, path: str) -> list[dict]:
    if value in (None, []):
        return []
    if not isinstance(value, list) or len(value) > 20:
        raise ValidationError(path, "expected a list of at most 20 filters")
    cleaned = []
    for n, item in enumerate(value):
        spec = _obj(item, f"{path}[{n}]")
        prop = spec.get("property")
        if not isinstance(prop, str) or not prop or len(prop) > 120:
            raise ValidationError(f"{path}[{n}].property", "expected a property name")
        if spec.get("op") not in FILTER_OPS:
            raise ValidationError(
                f"{path}[{n}].op", "expected one of %(choices)s", {"choices": ", ".join(FILTER_OPS)}
            )
        if spec["op"] != "exists" and not isinstance(spec.get("value"), str | int | float | bool):
            raise ValidationError(f"{path}[{n}].value", "expected a text, a number or true/false")
        cleaned.append({"property": prop, "op": spec["op"], "value": spec.get("value")})
    return cleaned


class _Checker:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.rules = RuleContext(workspace)

    def segment(self, value: Any, path: str) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not Segment.objects.filter(
                workspace=self.workspace, pk=value, archived_at__isnull=True
            ).exists()
        ):
            raise ValidationError(path, "no such segment")
        return value

    def event_name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > 120:
            raise ValidationError(path, "expected an event name")
        return value.strip()

    def trigger(self, value: Any, path: str) -> dict:
        spec = _obj(value, path)
        kind = spec.get("type")
        if kind not in TRIGGERS:
            raise ValidationError(
                f"{path}.type", "expected one of %(choices)s", {"choices": ", ".join(TRIGGERS)}
            )
        if kind in ("segment_entered", "segment_exited"):
            return {
                "type": kind,
                "segment_id": self.segment(spec.get("segment_id"), f"{path}.segment_id"),
            }
        if kind == "event":
            return {
                "type": kind,
                "event": self.event_name(spec.get("event"), f"{path}.event"),
                "where": _filters(spec.get("where"), f"{path}.where"),
            }
        if kind == "date":
            return {
                "type": kind,
                "field": self.date_field(spec.get("field"), f"{path}.field"),
                "offset_days": _int(spec.get("offset_days", 0), f"{path}.offset_days", -366, 366),
                "at": _time(spec.get("at", "09:00"), f"{path}.at"),
            }
        return {"type": "api"}

    def date_field(self, value: Any, path: str) -> str:
        if value in ("birthday", "first_order"):
            return value
        if isinstance(value, str) and value.startswith("attribute:"):
            definition = schema_for(self.workspace).get(value.split(":", 1)[1])
            if definition is not None and definition.type == AttributeType.DATE:
                return value
        raise ValidationError(
            path, "expected birthday, first_order or attribute:<a date attribute>"
        )

    def message(self, spec: dict, path: str, kind: str) -> dict:
        channel = (
            ChannelConfig.objects.filter(
                workspace=self.workspace, pk=spec.get("channel_id")
            ).first()
            if isinstance(spec.get("channel_id"), int)
            else None
        )
        if channel is None:
            raise ValidationError(f"{path}.channel_id", "no such channel")
        if (kind == "webhook") != (channel.kind == "webhook"):
            raise ValidationError(
                f"{path}.channel_id",
                "a %(step)s step needs a %(kind)s channel",
                {"step": kind, "kind": "webhook" if kind == "webhook" else "messaging"},
            )
        template = (
            MessageTemplate.objects.filter(
                workspace=self.workspace, pk=spec.get("template_id"), archived=False
            ).first()
            if isinstance(spec.get("template_id"), int)
            else None
        )
        if template is None or template.kind != channel.kind:
            raise ValidationError(
                f"{path}.template_id", "no %(kind)s template with this id", {"kind": channel.kind}
            )
        return {"channel_id": channel.pk, "template_id": template.pk}

    def step(self, value: Any, path: str) -> dict:
        spec = _obj(value, path)
        kind = spec.get("type")
        if kind not in STEPS:
            raise ValidationError(
                f"{path}.type", "expected one of %(choices)s", {"choices": ", ".join(STEPS)}
            )
        out: dict[str, Any] = {"type": kind}
        if kind == "wait":
            modes = [m for m in ("duration", "until_time", "until_event") if m in spec]
            if len(modes) != 1:
                raise ValidationError(path, "expected one of duration, until_time, until_event")
            if modes[0] == "duration":
                duration(spec["duration"], f"{path}.duration")
                out["duration"] = spec["duration"]
            elif modes[0] == "until_time":
                out["until_time"] = _time(spec["until_time"], f"{path}.until_time")
            else:
                wanted = _obj(spec["until_event"], f"{path}.until_event")
                out["until_event"] = {
                    "event": self.event_name(wanted.get("event"), f"{path}.until_event.event"),
                    "where": _filters(wanted.get("where"), f"{path}.until_event.where"),
                }
                duration(spec.get("timeout"), f"{path}.timeout")
                out["timeout"] = spec["timeout"]
                out["timeout_next"] = spec.get("timeout_next")
        elif kind == "branch":
            out["rule"] = validate_rule(spec.get("rule"), self.rules, f"{path}.rule")
            out["yes"], out["no"] = spec.get("yes"), spec.get("no")
        elif kind == "split":
            branches = spec.get("branches")
            if not isinstance(branches, list) or not 2 <= len(branches) <= 10:
                raise ValidationError(f"{path}.branches", "expected 2 to 10 branches")
            out["branches"] = [
                {
                    "percent": _int(
                        _obj(b, f"{path}.branches[{n}]").get("percent"),
                        f"{path}.branches[{n}].percent",
                        1,
                        99,
                    ),
                    "next": b.get("next"),
                }
                for n, b in enumerate(branches)
            ]
            if sum(b["percent"] for b in out["branches"]) != 100:
                raise ValidationError(f"{path}.branches", "the percentages must add up to 100")
        elif kind in ("send", "webhook"):
            out.update(self.message(spec, path, kind))
        elif kind == "tag":
            for field in ("add", "remove"):
                ids = spec.get(field) or []
                if not isinstance(ids, list):
                    raise ValidationError(f"{path}.{field}", "expected a list of tag ids")
                found = set(
                    Tag.objects.filter(
                        workspace=self.workspace, pk__in=[i for i in ids if isinstance(i, int)]
                    ).values_list("pk", flat=True)
                )
                for n, tag_id in enumerate(ids):
                    if tag_id not in found:
                        raise ValidationError(f"{path}.{field}[{n}]", "no such tag")
                out[field] = ids
            if not out["add"] and not out["remove"]:
                raise ValidationError(path, "add or remove at least one tag")
        elif kind == "attribute":
            definition = schema_for(self.workspace).get(spec.get("key"))
            if definition is None:
                raise ValidationError(f"{path}.key", "no such attribute")
            out["key"] = definition.key
            out["value"] = coerce_value(definition, spec.get("value"), f"{path}.value")
        if kind not in ("branch", "split", "exit"):
            out["next"] = spec.get("next")
        return out


def validate_graph(workspace: Workspace, graph: Any, path: str = "graph") -> dict:
    graph = _obj(graph, path)
    checker = _Checker(workspace)
    trigger = checker.trigger(graph.get("trigger"), f"{path}.trigger")
    steps_in = _obj(graph.get("steps"), f"{path}.steps")
    if not 1 <= len(steps_in) <= MAX_STEPS:
        raise ValidationError(f"{path}.steps", "expected 1 to %(n)s steps", {"n": MAX_STEPS})
    steps = {}
    for step_id, spec in steps_in.items():
        if not STEP_ID.match(step_id):
            raise ValidationError(f"{path}.steps", "a step id is 1 to 40 letters, digits, _ or -")
        steps[step_id] = checker.step(spec, f"{path}.steps.{step_id}")
    start = graph.get("start")
    if not isinstance(start, str) or start not in steps:
        raise ValidationError(f"{path}.start", "expected the id of a step")
    for step_id, step in steps.items():
        for field, target in successors(step):
            if target is not None and (not isinstance(target, str) or target not in steps):
                raise ValidationError(f"{path}.steps.{step_id}.{field}", "no step with this id")
    _check_acyclic_and_reachable(steps, start, path)
    return {"trigger": trigger, "start": start, "steps": steps}


def successors(step: dict) -> list[tuple[str, str | None]]:
    """(field, next step id or None) of every way out of a step."""
    kind = step["type"]
    if kind == "branch":
        return [("yes", step.get("yes")), ("no", step.get("no"))]
    if kind == "split":
        return [(f"branches[{n}].next", b.get("next")) for n, b in enumerate(step["branches"])]
    if kind == "exit":
        return []
    out = [("next", step.get("next"))]
    if kind == "wait" and "until_event" in step:
        out.append(("timeout_next", step.get("timeout_next")))
    return out


def _check_acyclic_and_reachable(steps: dict, start: str, path: str) -> None:
    state: dict[str, str] = {}

    def visit(step_id: str) -> None:
        state[step_id] = "open"
        for _, target in successors(steps[step_id]):
            if target is None:
                continue
            if state.get(target) == "open":
                raise ValidationError(f"{path}.steps.{step_id}", "the steps form a loop")
            if target not in state:
                visit(target)
        state[step_id] = "done"

    visit(start)
    unreachable = sorted(set(steps) - set(state))
    if unreachable:
        raise ValidationError(f"{path}.steps.{unreachable[0]}", "cannot be reached from start")

"""A journey's graph in words and as a drawing: the names its ids point at (one query per kind
of thing), each step and the trigger summed up in a line, and the vertical flow the builder
and the report draw (server-rendered boxes; branches, splits and wait-for-event timeouts as
side-by-side columns). The graph may be half edited here: nothing assumes it is valid."""

import json
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from siyu.console.views.campaigns_labels import (
    DATE_FIELDS,
    FILTER_OPS,
    STEP_TYPES,
    TRIGGERS,
    label,
)
from siyu.console.views.segments_text import rule_text
from siyu.contacts.models import AttributeDefinition, AttributeType, Tag
from siyu.core.models import Workspace
from siyu.messaging.models import ChannelConfig, MessageTemplate
from siyu.segments.queries import segments as live_segments

# the step kinds offered by "add a step", in the order the menu lists them
ADDABLE = ("send", "wait", "branch", "split", "tag", "attribute", "webhook", "exit")


class Lookup:
    """The workspace's channels, templates, tags, segments and attributes, loaded once per
    page: the builder's pickers and the names in the drawing both read them."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.channels = list(ChannelConfig.objects.filter(workspace=workspace).order_by("name"))
        self.templates = list(
            MessageTemplate.objects.filter(workspace=workspace, archived=False).order_by("name")
        )
        self.tags = list(Tag.objects.filter(workspace=workspace).order_by("name"))
        self.segments = list(live_segments(workspace).order_by("name"))
        self.attributes = list(
            AttributeDefinition.objects.filter(workspace=workspace).order_by("label")
        )
        self.channel_by_id = {c.pk: c for c in self.channels}
        self.template_by_id = {t.pk: t for t in self.templates}
        self.tag_by_id = {t.pk: t for t in self.tags}
        self.segment_by_id = {s.pk: s for s in self.segments}
        self.attribute_by_key = {a.key: a for a in self.attributes}

    def date_attributes(self) -> list[AttributeDefinition]:
        return [a for a in self.attributes if a.type == AttributeType.DATE]

    def templates_of(self, kind: str) -> list[MessageTemplate]:
        return [t for t in self.templates if t.kind == kind]

    def _name(self, table: dict, key: Any) -> str:
        found = table.get(key)
        return found.name if found is not None else _("(missing)")

    # --- words --------------------------------------------------------------------------

    def trigger_text(self, trigger: Any) -> str:
        trigger = trigger if isinstance(trigger, dict) else {}
        kind = trigger.get("type")
        if kind == "segment_entered":
            name = self._name(self.segment_by_id, trigger.get("segment_id"))
            return _("Enters the segment 「%(name)s」") % {"name": name}
        if kind == "segment_exited":
            name = self._name(self.segment_by_id, trigger.get("segment_id"))
            return _("Leaves the segment 「%(name)s」") % {"name": name}
        if kind == "event":
            text = _("Does the event %(event)s") % {"event": trigger.get("event") or "—"}
            where = trigger.get("where") or []
            if where:
                text += "（" + self.filters_text(where) + "）"
            return text
        if kind == "date":
            return self.date_text(trigger)
        if kind == "api":
            return label(TRIGGERS, "api")
        return _("No trigger chosen")

    def date_text(self, trigger: dict) -> str:
        field = trigger.get("field") or ""
        if field.startswith("attribute:"):
            found = self.attribute_by_key.get(field.split(":", 1)[1])
            what = found.label if found else field.split(":", 1)[1]
        else:
            what = label(DATE_FIELDS, field) if field else "—"
        offset = trigger.get("offset_days") or 0
        params = {"what": what, "at": trigger.get("at") or "09:00"}
        if not isinstance(offset, int) or offset == 0:
            return _("On the day of %(what)s, at %(at)s") % params
        params["n"] = abs(offset)
        # a birthday's offset counts the days before it; the other dates' the days after
        before = offset > 0 if field == "birthday" else offset < 0
        if before:
            return _("%(n)s days before %(what)s, at %(at)s") % params
        return _("%(n)s days after %(what)s, at %(at)s") % params

    def filters_text(self, where: list) -> str:
        parts = []
        for f in where:
            if not isinstance(f, dict):
                continue
            op = label(FILTER_OPS, f.get("op", ""))
            value = "" if f.get("op") == "exists" else f" {f.get('value', '')}"
            parts.append(f"{f.get('property') or '—'} {op}{value}")
        return _("; ").join(parts)

    def summary(self, step: Any) -> str:
        """One line saying what a step does."""
        step = step if isinstance(step, dict) else {}
        kind = step.get("type")
        if kind in ("send", "webhook"):
            channel = self.channel_by_id.get(step.get("channel_id"))
            if channel is None:
                return _("Choose a channel and a template")
            template = self._name(self.template_by_id, step.get("template_id"))
            return f"{channel.name} · {template}"
        if kind == "wait":
            return self.wait_text(step)
        if kind == "branch":
            try:
                text = rule_text(self.workspace, step.get("rule"))
            except (KeyError, TypeError, ValueError, AttributeError):
                text = ""
            return text or _("Everyone (no condition yet)")
        if kind == "split":
            branches = step.get("branches") if isinstance(step.get("branches"), list) else []
            return " / ".join(f"{b.get('percent', '?')}%" for b in branches if isinstance(b, dict))
        if kind == "tag":
            parts = []
            for field, word in (("add", _("add")), ("remove", _("remove"))):
                names = [self._name(self.tag_by_id, t) for t in step.get(field) or []]
                if names:
                    parts.append(f"{word} {'、'.join(names)}")
            return _("; ").join(parts) or _("Choose tags to add or remove")
        if kind == "attribute":
            found = self.attribute_by_key.get(step.get("key"))
            name = found.label if found else (step.get("key") or "—")
            return _("Set %(name)s to %(value)s") % {"name": name, "value": step.get("value")}
        if kind == "exit":
            return _("End the walk")
        return ""

    def wait_text(self, step: dict) -> str:
        if "until_time" in step:
            return _("Until %(time)s") % {"time": step.get("until_time") or "—"}
        if "until_event" in step:
            wanted = step["until_event"] if isinstance(step["until_event"], dict) else {}
            return _("Until %(event)s, at most %(timeout)s") % {
                "event": wanted.get("event") or "—",
                "timeout": duration_text(step.get("timeout")),
            }
        return duration_text(step.get("duration"))


def duration_text(spec: Any) -> str:
    spec = spec if isinstance(spec, dict) else {}
    parts = []
    for key, one, many in (
        ("days", "%(n)s day", "%(n)s days"),
        ("hours", "%(n)s hour", "%(n)s hours"),
        ("minutes", "%(n)s minute", "%(n)s minutes"),
    ):
        n = spec.get(key)
        if isinstance(n, int) and n:
            parts.append(ngettext(one, many, n) % {"n": n})
        elif n not in (None, 0, ""):
            parts.append(f"{n} {key}")  # not a number yet: shown as typed
    return " ".join(parts) or "—"


# --- the drawing ----------------------------------------------------------------------------


def ways_out(step: Any) -> list[tuple[str, Any, str]]:
    """(slot, next step id or None, label) of every way out of a possibly unfinished step."""
    step = step if isinstance(step, dict) else {}
    kind = step.get("type")
    if kind == "branch":
        return [("yes", step.get("yes"), _("Yes")), ("no", step.get("no"), _("No"))]
    if kind == "split":
        branches = step.get("branches") if isinstance(step.get("branches"), list) else []
        return [
            (f"branches[{n}].next", b.get("next"), f"{chr(65 + n)} · {b.get('percent', '?')}%")
            for n, b in enumerate(branches)
            if isinstance(b, dict)
        ]
    if kind == "exit":
        return []
    if kind == "wait" and "until_event" in step:
        return [
            ("next", step.get("next"), _("The event happened")),
            ("timeout_next", step.get("timeout_next"), _("Timed out")),
        ]
    return [("next", step.get("next"), "")]


def _vals(**values: Any) -> str:
    return json.dumps(values, ensure_ascii=False)


def flow_layout(
    graph: dict,
    lookup: Lookup,
    *,
    stats: dict[str, int] | None = None,
    editable: bool = False,
    selected: str = "",
    error: dict | None = None,
) -> dict[str, Any]:
    """The drawing as nested columns of items: `add` (a ＋ into a slot), `step` (a box, with
    `fork` columns when it has several ways out), `goto` (a path joining a step drawn
    elsewhere) and `end`. Each step is drawn once, where the first path reaches it."""
    steps = graph.get("steps") if isinstance(graph.get("steps"), dict) else {}
    drawn: set[str] = set()
    error_step = (error or {}).get("step")

    def add_item(after: str, slot: str, target: Any) -> dict[str, Any]:
        # an exit ends a path: offered only where nothing follows
        kinds = [k for k in ADDABLE if k != "exit" or target is None]
        return {
            "kind": "add",
            "after": after,
            "slot": slot,
            "choices": [
                {
                    "type": k,
                    "label": label(STEP_TYPES, k),
                    "vals": _vals(op="add", after=after, slot=slot, type=k),
                }
                for k in kinds
            ],
        }

    def column(target: Any, after: str, slot: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            if editable:
                items.append(add_item(after, slot, target))
            if target is None or target not in steps:
                items.append({"kind": "end"})
                return items
            if target in drawn:
                items.append({"kind": "goto", "target": target})
                return items
            drawn.add(target)
            step = steps[target]
            outs = ways_out(step)
            box = {
                "kind": "step",
                "id": target,
                "type": step.get("type") if isinstance(step, dict) else "",
                "type_label": label(STEP_TYPES, step.get("type", ""))
                if isinstance(step, dict)
                else "",
                "summary": lookup.summary(step),
                "selected": target == selected,
                "error": error["message"] if error and error_step == target else "",
                "error_field": error.get("field", "") if error and error_step == target else "",
                "entered": (stats or {}).get(target, 0) if stats is not None else None,
                "select_vals": _vals(op="select", step=target),
                "delete_vals": _vals(op="delete", step=target),
                "drops_paths": len(outs) > 1,
                "fork": None,
            }
            items.append(box)
            if len(outs) == 1:
                after, slot, target = target, outs[0][0], outs[0][1]
                continue
            if outs:
                box["fork"] = [
                    {"label": way_label, "items": column(way_target, box["id"], way_slot)}
                    for way_slot, way_target, way_label in outs
                ]
            return items

    start = graph.get("start")
    return {
        "trigger": {
            "text": lookup.trigger_text(graph.get("trigger")),
            "selected": selected == "@trigger",
            "error": error["message"] if error and error_step == "@trigger" else "",
            "error_field": error.get("field", "") if error and error_step == "@trigger" else "",
            "select_vals": _vals(op="select", step="@trigger"),
        },
        "items": column(start if start in steps else None, "", "start"),
    }

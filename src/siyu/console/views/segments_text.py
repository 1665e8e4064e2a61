"""A segment rule in readable words ("城市 等于 上海 且 最近 7 天 Product Viewed ≥ 2 次"), and
the operator labels the builder's drop-downs show. Names of tags, staff, segments and
custom attributes are looked up once per rule, scoped to the workspace."""

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.accounts.models import Staff
from siyu.contacts.models import AttributeDefinition, Tag
from siyu.core.models import Workspace
from siyu.segments import catalog
from siyu.segments.models import Segment

# operator -> label, for comparisons of a field with a value
OPS = {
    "eq": gettext_lazy("equals"),
    "neq": gettext_lazy("does not equal"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "contains": gettext_lazy("contains"),
    "not_contains": gettext_lazy("does not contain"),
    "starts_with": gettext_lazy("starts with"),
    "is_set": gettext_lazy("is set"),
    "not_set": gettext_lazy("is not set"),
    "gt": gettext_lazy("greater than"),
    "gte": gettext_lazy("at least"),
    "lt": gettext_lazy("less than"),
    "lte": gettext_lazy("at most"),
    "between": gettext_lazy("between"),
    "is_true": gettext_lazy("is yes"),
    "is_false": gettext_lazy("is no"),
    "on": gettext_lazy("on"),
    "before": gettext_lazy("before"),
    "after": gettext_lazy("after"),
    "within_last_days": gettext_lazy("within the last N days"),
    "more_than_days_ago": gettext_lazy("more than N days ago"),
    "within_next_days": gettext_lazy("within the next N days"),
    "anniversary_within_next_days": gettext_lazy("anniversary within the next N days"),
}
# counts of events: symbols read best ("≥ 2 次")
COUNT_OPS = {"eq": "=", "neq": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
TAG_OPS = {
    "any": gettext_lazy("has any of"),
    "all": gettext_lazy("has all of"),
    "none": gettext_lazy("has none of"),
}
BOUGHT_OPS = {"any": gettext_lazy("bought any of"), "none": gettext_lazy("bought none of")}
BOUGHT_BY = {"product": gettext_lazy("products"), "category": gettext_lazy("categories")}
IDENTITY_OPS = {"has": gettext_lazy("has"), "has_not": gettext_lazy("has no")}
CONSENT_OPS = {"is": gettext_lazy("is"), "is_not": gettext_lazy("is not")}
SEGMENT_OPS = {"in": gettext_lazy("in segment"), "not_in": gettext_lazy("not in segment")}
WHICH = {"first": gettext_lazy("first"), "last": gettext_lazy("last")}
PROPERTY_KINDS = {
    "string": gettext_lazy("text"),
    "number": gettext_lazy("number"),
    "boolean": gettext_lazy("yes / no"),
}


def builder_labels() -> dict[str, Any]:
    """Every label the builder's script shows, in the active language."""

    def plain(table: dict) -> dict[str, str]:
        return {k: str(v) for k, v in table.items()}

    return {
        "ops": plain(OPS),
        "count_ops": COUNT_OPS,
        "tag_ops": plain(TAG_OPS),
        "bought_ops": plain(BOUGHT_OPS),
        "bought_by": plain(BOUGHT_BY),
        "identity_ops": plain(IDENTITY_OPS),
        "consent_ops": plain(CONSENT_OPS),
        "segment_ops": plain(SEGMENT_OPS),
        "which": plain(WHICH),
        "property_kinds": plain(PROPERTY_KINDS),
        "all": _("All of"),
        "any": _("Any of"),
        "and": _("and"),
        "or": _("or"),
        "not": _("Not"),
        "add_condition": _("Add condition"),
        "add_group": _("Add group"),
        "remove": _("Remove"),
        "unwrap_not": _("Drop the negation"),
        "condition_type": _("Condition type"),
        "field": _("Field"),
        "operator": _("Comparison"),
        "value": _("Value"),
        "days": _("days"),
        "times": _("times"),
        "yuan": _("yuan"),
        "to": _("to"),
        "all_time": _("All time"),
        "last_days": _("Last N days"),
        "date_range": _("Date range"),
        "list_hint": _("Separate values with commas"),
        "event_name": _("Event name"),
        "add_property": _("Add property filter"),
        "property": _("Property"),
        "where": _("where"),
        "percent": _("Percent"),
        "seed": _("Seed"),
        "empty_group": _("No conditions yet: this group matches every contact."),
        "no_attributes": _("No custom attributes are defined in this workspace."),
        "no_segments": _("No other segments yet."),
        "no_tags": _("No tags yet."),
        "counting": _("Counting…"),
        "contacts": _("contacts"),
        "invalid": _("Fix the highlighted condition to see the count."),
        "failed": _("The count could not be loaded. Try again."),
    }


class Names:
    """Display names of what a rule refers to by id or key, loaded in one query each."""

    def __init__(self, workspace: Workspace, rule: dict):
        ids: dict[str, set] = {"tags": set(), "staff": set(), "segments": set(), "attrs": set()}
        _collect(rule, ids)
        self.tags = dict(
            Tag.objects.filter(workspace=workspace, pk__in=ids["tags"]).values_list("pk", "name")
        )
        self.staff = {
            s.pk: s.display_name
            for s in Staff.objects.filter(
                pk__in=ids["staff"], memberships__workspace=workspace
            ).distinct()
        }
        self.segments = dict(
            Segment.objects.filter(workspace=workspace, pk__in=ids["segments"]).values_list(
                "pk", "name"
            )
        )
        self.attributes = {
            d.key: d
            for d in AttributeDefinition.objects.filter(workspace=workspace, key__in=ids["attrs"])
        }


def _collect(node: Any, ids: dict[str, set]) -> None:
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind in ("and", "or"):
        for child in node.get("rules") or []:
            _collect(child, ids)
    elif kind == "not":
        _collect(node.get("rule"), ids)
    elif kind == "tags":
        ids["tags"].update(v for v in node.get("value") or [] if isinstance(v, int))
    elif kind == "segment" and isinstance(node.get("value"), int):
        ids["segments"].add(node["value"])
    elif kind == "field" and node.get("field") == "owner":
        value = node.get("value")
        values = value if isinstance(value, list) else [value]
        ids["staff"].update(v for v in values if isinstance(v, int))
    elif kind == "attribute" and isinstance(node.get("key"), str):
        ids["attrs"].add(node["key"])


def rule_text(workspace: Workspace, rule: Any) -> str:
    """The whole rule in words; a rule that matches everyone says so."""
    if not isinstance(rule, dict) or not rule:
        return ""
    return _Writer(Names(workspace, rule)).node(rule, top=True)


class _Writer:
    def __init__(self, names: Names):
        self.names = names

    def node(self, node: dict, top: bool = False) -> str:
        kind = node.get("type")
        if kind in ("and", "or"):
            parts = [self.node(child) for child in node.get("rules") or []]
            if not parts:
                return _("every contact")
            joiner = _(" and ") if kind == "and" else _(" or ")
            text = joiner.join(parts)
            return text if top or len(parts) == 1 else f"（{text}）"
        if kind == "not":
            inner = self.node(node.get("rule") or {}, top=True)
            return _("not (%(rule)s)") % {"rule": inner}
        method = getattr(self, f"_{kind}", None)
        return method(node) if method else str(kind)

    # -- leaves -----------------------------------------------------------------------------

    def _field(self, node: dict) -> str:
        field = catalog.CONTACT_FIELDS.get(node.get("field"))
        if field is None:
            return str(node.get("field"))
        if field.type == "staff":
            return self.compare(field.label, node, lambda v: self.names.staff.get(v, f"#{v}"))
        return self.compare(field.label, node, _chooser(field.choices))

    def _attribute(self, node: dict) -> str:
        definition = self.names.attributes.get(node.get("key"))
        label = definition.label if definition else node.get("key", "")
        return self.compare(label, node)

    def _score(self, node: dict) -> str:
        field = catalog.SCORE_FIELDS.get(node.get("field"))
        if field is None:
            return str(node.get("field"))
        return self.compare(field.label, node, _chooser(field.choices))

    def _orders(self, node: dict) -> str:
        field = catalog.ORDER_METRICS.get(node.get("metric"))
        label = field.label if field else str(node.get("metric"))
        return _windowed(node.get("window"), self.compare(label, node))

    def _tags(self, node: dict) -> str:
        names = [self.names.tags.get(v, f"#{v}") for v in node.get("value") or []]
        op = TAG_OPS.get(node.get("op"), node.get("op"))
        return _("tags %(op)s %(names)s") % {"op": op, "names": "、".join(names)}

    def _identity(self, node: dict) -> str:
        kinds = dict(catalog.IDENTITY_KINDS)
        op = IDENTITY_OPS.get(node.get("op"), node.get("op"))
        return f"{op} {kinds.get(node.get('value'), node.get('value'))}"

    def _consent(self, node: dict) -> str:
        channel = dict(catalog.CONSENT_CHANNELS).get(node.get("channel"), node.get("channel"))
        value = dict(catalog.CONSENT_VALUES).get(node.get("value"), node.get("value"))
        op = CONSENT_OPS.get(node.get("op"), node.get("op"))
        return _("%(channel)s consent %(op)s %(value)s") % {
            "channel": channel,
            "op": op,
            "value": value,
        }

    def _bought(self, node: dict) -> str:
        op = BOUGHT_OPS.get(node.get("op"), node.get("op"))
        by = BOUGHT_BY.get(node.get("by"), node.get("by"))
        text = f"{op}{by} {'、'.join(map(str, node.get('value') or []))}"
        return _windowed(node.get("window"), text)

    def _event(self, node: dict) -> str:
        op = COUNT_OPS.get(node.get("op"), node.get("op"))
        text = _("%(event)s %(op)s %(n)s times") % {
            "event": node.get("event"),
            "op": op,
            "n": node.get("value"),
        }
        where = [self.compare(w.get("property", ""), w) for w in node.get("where") or []]
        if where:
            text += "（" + _(" and ").join(where) + "）"
        return _windowed(node.get("window"), text)

    def _event_time(self, node: dict) -> str:
        which = WHICH.get(node.get("which"), node.get("which"))
        label = _("%(which)s %(event)s") % {"which": which, "event": node.get("event")}
        return self.compare(label, node)

    def _segment(self, node: dict) -> str:
        name = self.names.segments.get(node.get("value"), f"#{node.get('value')}")
        op = SEGMENT_OPS.get(node.get("op"), node.get("op"))
        return f"{op}「{name}」"

    def _sample(self, node: dict) -> str:
        return _("a random %(percent)s%% sample") % {"percent": _number(node.get("value"))}

    # -- comparisons ------------------------------------------------------------------------

    def compare(self, label: str, node: dict, show=None) -> str:
        op, value = node.get("op"), node.get("value")
        show = show or _number
        if op in catalog.VALUELESS:
            return f"{label} {OPS[op]}"
        if op in catalog.DAY_OPS:
            template = {
                "within_last_days": _("%(label)s within the last %(n)s days"),
                "more_than_days_ago": _("%(label)s more than %(n)s days ago"),
                "within_next_days": _("%(label)s within the next %(n)s days"),
                "anniversary_within_next_days": _(
                    "%(label)s anniversary within the next %(n)s days"
                ),
            }[op]
            return template % {"label": label, "n": value}
        if op == "between" and isinstance(value, list) and len(value) == 2:
            return _("%(label)s between %(low)s and %(high)s") % {
                "label": label,
                "low": show(value[0]),
                "high": show(value[1]),
            }
        if isinstance(value, list):
            shown = "、".join(str(show(v)) for v in value)
        else:
            shown = show(value)
        return f"{label} {OPS.get(op, op)} {shown}"


def _chooser(choices):
    labels = dict(choices)
    return lambda v: labels.get(v, _number(v))


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _windowed(window: Any, text: str) -> str:
    if not isinstance(window, dict) or not window:
        return text
    if "last_days" in window:
        return _("in the last %(n)s days, %(rule)s") % {"n": window["last_days"], "rule": text}
    first, last = window.get("from"), window.get("to")
    if first and last:
        span = _("%(from)s to %(to)s") % {"from": first, "to": last}
    elif first:
        span = _("since %(from)s") % {"from": first}
    else:
        span = _("until %(to)s") % {"to": last}
    return f"{span} {text}"

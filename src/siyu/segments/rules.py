"""The segment rule tree: validated before anything is saved or compiled, so that nothing
uncompilable reaches the database. A bad rule raises `ValidationError` naming its path in
the tree (`rule.rules[1].op`), which the API answers with 422.

A rule is a JSON object with a `type`:

    {"type": "and" | "or", "rules": [rule, ...]}
    {"type": "not", "rule": rule}
    {"type": "field", "field": "city", "op": "eq", "value": "上海"}
    {"type": "attribute", "key": "vip_level", "op": "gte", "value": 3}
    {"type": "tags", "op": "any" | "all" | "none", "value": [tag_id, ...]}
    {"type": "identity", "op": "has" | "has_not", "value": "phone"}
    {"type": "consent", "channel": "sms", "op": "is" | "is_not", "value": "granted"}
    {"type": "orders", "metric": "spend", "op": "gte", "value": 1000, "window": {...}}
    {"type": "bought", "by": "product" | "category", "op": "any" | "none",
     "value": ["sku-1"], "window": {...}}
    {"type": "event", "event": "Product Viewed", "op": "gte", "value": 3,
     "window": {...}, "where": [{"property": "price", "kind": "number",
                                 "op": "gte", "value": 100}]}
    {"type": "event_time", "event": "Signed Up", "which": "first" | "last",
     "op": "within_last_days", "value": 7}
    {"type": "score", "field": "stage", "op": "eq", "value": "active"}
    {"type": "segment", "op": "in" | "not_in", "value": segment_id}
    {"type": "sample", "value": 10, "seed": "holdout-2026"}

A window is {"last_days": N} (today and the N-1 days before, in the workspace's time zone)
or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"} (inclusive); without one, all time. docs/
segments.md describes every operator."""

import datetime
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from siyu.contacts.models import AttributeDefinition, AttributeType, Tag
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.segments import catalog
from siyu.segments.catalog import DAY_OPS, LIST_OPS, MAX_DAYS, OPERATORS, VALUELESS, Field

MAX_DEPTH = 12
MAX_NODES = 200
MAX_LIST = 1000

ATTRIBUTE_TYPES = {
    AttributeType.TEXT: "text",
    AttributeType.NUMBER: "number",
    AttributeType.DATE: "date",
    AttributeType.BOOL: "bool",
    AttributeType.CHOICE: "choice",
}


class RuleContext:
    """What validation needs to know about the workspace, loaded lazily and once."""

    def __init__(self, workspace: Workspace, segment_id: int | None = None):
        self.workspace = workspace
        self.segment_id = segment_id  # the segment being saved, for cycle checks
        self._attributes: dict[str, AttributeDefinition] | None = None
        self.nodes = 0

    @property
    def attributes(self) -> dict[str, AttributeDefinition]:
        if self._attributes is None:
            self._attributes = {
                d.key: d for d in AttributeDefinition.objects.filter(workspace=self.workspace)
            }
        return self._attributes


def validate_rule(rule: Any, ctx: RuleContext, path: str = "rule") -> dict:
    """The rule, checked and normalised (values coerced, keys ordered); raises naming the
    path of the first problem."""
    clean = _node(rule, ctx, path, depth=0)
    _check_cycles(clean, ctx, path)
    return clean


def _node(rule: Any, ctx: RuleContext, path: str, depth: int) -> dict:
    if not isinstance(rule, dict):
        raise ValidationError(path, "expected an object with a type")
    if depth > MAX_DEPTH:
        raise ValidationError(path, "nested too deeply (at most %(n)s levels)", {"n": MAX_DEPTH})
    ctx.nodes += 1
    if ctx.nodes > MAX_NODES:
        raise ValidationError(path, "too many conditions (at most %(n)s)", {"n": MAX_NODES})
    kind = rule.get("type")
    check = NODES.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise ValidationError(
            f"{path}.type", "unknown rule type %(type)r", {"type": kind}, known=list(NODES)
        )
    return check(rule, ctx, path, depth)


def _group(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    rules = rule.get("rules")
    if not isinstance(rules, list):
        raise ValidationError(f"{path}.rules", "expected a list of rules")
    children = [_node(r, ctx, f"{path}.rules[{i}]", depth + 1) for i, r in enumerate(rules)]
    return {"type": rule["type"], "rules": children}


def _not(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    return {"type": "not", "rule": _node(rule.get("rule"), ctx, f"{path}.rule", depth + 1)}


def _field(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    key = rule.get("field")
    field = catalog.CONTACT_FIELDS.get(key) if isinstance(key, str) else None
    if field is None:
        raise ValidationError(
            f"{path}.field",
            "unknown field %(field)r",
            {"field": key},
            known=list(catalog.CONTACT_FIELDS),
        )
    op, value = _comparison(rule, field, path)
    return {"type": "field", "field": key, "op": op, "value": value}


def _attribute(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    key = rule.get("key")
    definition = ctx.attributes.get(key) if isinstance(key, str) else None
    if definition is None:
        raise ValidationError(
            f"{path}.key",
            "no attribute %(key)r in this workspace",
            {"key": key},
            known=sorted(ctx.attributes),
        )
    choices = tuple((c, c) for c in definition.choices)
    field = Field(
        definition.label, ATTRIBUTE_TYPES[definition.type], nullable=True, choices=choices
    )
    op, value = _comparison(rule, field, path)
    return {"type": "attribute", "key": key, "op": op, "value": value}


def _tags(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    op = _one_of(rule, "op", catalog.TAG_OPS, path)
    ids = _int_list(rule.get("value"), f"{path}.value")
    known = set(
        Tag.objects.filter(workspace=ctx.workspace, pk__in=ids).values_list("pk", flat=True)
    )
    for i, tag_id in enumerate(ids):
        if tag_id not in known:
            raise ValidationError(
                f"{path}.value[{i}]", "no tag %(id)s in this workspace", {"id": tag_id}
            )
    return {"type": "tags", "op": op, "value": sorted(set(ids))}


def _identity(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    op = _one_of(rule, "op", ("has", "has_not"), path)
    kind = _one_of(rule, "value", [v for v, _ in catalog.IDENTITY_KINDS], path)
    return {"type": "identity", "op": op, "value": kind}


def _consent(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    channel = _one_of(rule, "channel", [v for v, _ in catalog.CONSENT_CHANNELS], path)
    op = _one_of(rule, "op", ("is", "is_not"), path)
    value = _one_of(rule, "value", [v for v, _ in catalog.CONSENT_VALUES], path)
    return {"type": "consent", "channel": channel, "op": op, "value": value}


def _orders(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    metric = _one_of(rule, "metric", list(catalog.ORDER_METRICS), path)
    op, value = _comparison(rule, catalog.ORDER_METRICS[metric], path)
    return {
        "type": "orders",
        "metric": metric,
        "op": op,
        "value": value,
        "window": _window(rule.get("window"), f"{path}.window"),
    }


def _bought(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    by = _one_of(rule, "by", catalog.BOUGHT_BY, path)
    op = _one_of(rule, "op", ("any", "none"), path)
    values = _text_list(rule.get("value"), f"{path}.value")
    return {
        "type": "bought",
        "by": by,
        "op": op,
        "value": values,
        "window": _window(rule.get("window"), f"{path}.window"),
    }


def _event(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    name = _event_name(rule, path)
    op = _one_of(rule, "op", catalog.EVENT_COUNT_OPS, path)
    count = _whole(rule.get("value"), f"{path}.value", low=0, high=10**9)
    where = rule.get("where") or []
    if not isinstance(where, list):
        raise ValidationError(f"{path}.where", "expected a list of property filters")
    filters = [_property_filter(w, f"{path}.where[{i}]") for i, w in enumerate(where)]
    return {
        "type": "event",
        "event": name,
        "op": op,
        "value": count,
        "window": _window(rule.get("window"), f"{path}.window"),
        "where": filters,
    }


def _event_time(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    name = _event_name(rule, path)
    which = _one_of(rule, "which", ("first", "last"), path)
    op = _one_of(rule, "op", catalog.EVENT_TIME_OPS, path)
    value = _date_value(op, rule.get("value"), f"{path}.value")
    return {"type": "event_time", "event": name, "which": which, "op": op, "value": value}


def _score(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    key = _one_of(rule, "field", list(catalog.SCORE_FIELDS), path)
    op, value = _comparison(rule, catalog.SCORE_FIELDS[key], path)
    return {"type": "score", "field": key, "op": op, "value": value}


def _segment(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    from siyu.segments.models import Segment

    op = _one_of(rule, "op", ("in", "not_in"), path)
    segment_id = _whole(rule.get("value"), f"{path}.value", low=1, high=2**62)
    exists = Segment.objects.filter(
        workspace=ctx.workspace, pk=segment_id, archived_at__isnull=True
    ).exists()
    if not exists:
        raise ValidationError(
            f"{path}.value", "no segment %(id)s in this workspace", {"id": segment_id}
        )
    return {"type": "segment", "op": op, "value": segment_id}


def _sample(rule: dict, ctx: RuleContext, path: str, depth: int) -> dict:
    percent = _number(rule.get("value"), f"{path}.value")
    if not 0.01 <= percent <= 100:  # hundredths of a percent: the bucket is 0..9999
        raise ValidationError(f"{path}.value", "a percentage from 0.01 to 100")
    seed = rule.get("seed", "")
    if not isinstance(seed, str) or len(seed) > 100:
        raise ValidationError(f"{path}.seed", "expected a text of at most 100 characters")
    # hundredths of a percent: the compiled bucket is 0..9999
    return {"type": "sample", "value": float(round(percent, 2)), "seed": seed}


NODES: dict[str, Callable[[dict, RuleContext, str, int], dict]] = {
    "and": _group,
    "or": _group,
    "not": _not,
    "field": _field,
    "attribute": _attribute,
    "tags": _tags,
    "identity": _identity,
    "consent": _consent,
    "orders": _orders,
    "bought": _bought,
    "event": _event,
    "event_time": _event_time,
    "score": _score,
    "segment": _segment,
    "sample": _sample,
}


# -- values -------------------------------------------------------------------------------


def _comparison(rule: dict, field: Field, path: str) -> tuple[str, Any]:
    """The operator (checked against the field's type) and its coerced value."""
    op = rule.get("op")
    allowed = OPERATORS[field.type]
    if op not in allowed:
        raise ValidationError(
            f"{path}.op",
            "operator %(op)r does not apply to a %(type)s field",
            {"op": op, "type": field.type},
            allowed=list(allowed),
        )
    return op, _value(field, op, rule.get("value"), f"{path}.value")


def _value(field: Field, op: str, value: Any, path: str) -> Any:
    if op in VALUELESS:
        return None
    if op in DAY_OPS or field.type in ("date", "datetime"):
        return _date_value(op, value, path)
    if op in LIST_OPS:
        if not isinstance(value, list) or not value:
            raise ValidationError(path, "expected a non-empty list")
        if len(value) > MAX_LIST:
            raise ValidationError(path, "at most %(n)s values", {"n": MAX_LIST})
        return [_scalar(field, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValidationError(path, "expected [low, high]")
        low, high = (_scalar(field, v, f"{path}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise ValidationError(path, "low is above high")
        return [low, high]
    return _scalar(field, value, path)


def _scalar(field: Field, value: Any, path: str) -> Any:
    kind = field.type
    if kind == "text":
        if not isinstance(value, str) or len(value) > 500:
            raise ValidationError(path, "expected a text of at most 500 characters")
        return value
    if kind == "choice":
        known = [v for v, _ in field.choices]
        if value not in known:
            raise ValidationError(
                path, "%(value)r is not one of the choices", {"value": value}, choices=known
            )
        return value
    if kind == "staff":
        return _whole(value, path, low=1, high=2**62)
    if kind == "money":
        return str(_money(value, path))
    if kind == "number":
        return _number(value, path)
    raise ValidationError(path, "no value expected")


def _date_value(op: str, value: Any, path: str) -> Any:
    if op in DAY_OPS:
        return _whole(value, path, low=0, high=MAX_DAYS)
    if op in VALUELESS:
        return None
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValidationError(path, "expected [first day, last day]")
        first, last = (_date(v, f"{path}[{i}]") for i, v in enumerate(value))
        if first > last:
            raise ValidationError(path, "the first day is after the last")
        return [first.isoformat(), last.isoformat()]
    return _date(value, path).isoformat()


def _window(window: Any, path: str) -> dict | None:
    if window is None or window == {}:
        return None
    if not isinstance(window, dict):
        raise ValidationError(path, "expected {last_days: N} or {from, to}")
    if "last_days" in window:
        if set(window) != {"last_days"}:
            raise ValidationError(path, "last_days goes alone")
        return {"last_days": _whole(window["last_days"], f"{path}.last_days", 1, MAX_DAYS)}
    unknown = set(window) - {"from", "to"}
    if unknown or not window:
        raise ValidationError(path, "expected {last_days: N} or {from, to}")
    out = {}
    for key in ("from", "to"):
        if window.get(key) is not None:
            out[key] = _date(window[key], f"{path}.{key}").isoformat()
    if "from" in out and "to" in out and out["from"] > out["to"]:
        raise ValidationError(path, "from is after to")
    return out or None


def _property_filter(rule: Any, path: str) -> dict:
    if not isinstance(rule, dict):
        raise ValidationError(path, "expected {property, kind, op, value}")
    name = rule.get("property")
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 100
        or any(c in name for c in '."\\[]$')
        or name.isdigit()  # a JSON path would read it as an array index
    ):
        raise ValidationError(f"{path}.property", "expected a top-level property name")
    kind = rule.get("kind")
    if kind not in catalog.EVENT_PROPERTY_TYPES:
        raise ValidationError(
            f"{path}.kind",
            "unknown property type %(kind)r",
            {"kind": kind},
            known=list(catalog.EVENT_PROPERTY_TYPES),
        )
    field = Field(name, catalog.EVENT_PROPERTY_TYPES[kind], nullable=True)
    op, value = _comparison(rule, field, path)
    return {"property": name, "kind": kind, "op": op, "value": value}


def _event_name(rule: dict, path: str) -> str:
    name = rule.get("event")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ValidationError(f"{path}.event", "expected an event name")
    return name


def _one_of(rule: dict, key: str, allowed, path: str) -> Any:
    value = rule.get(key)
    if value not in allowed:
        raise ValidationError(
            f"{path}.{key}",
            "%(value)r is not allowed here",
            {"value": value},
            allowed=list(allowed),
        )
    return value


def _whole(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            path, "expected a whole number from %(low)s to %(high)s", {"low": low, "high": high}
        )
    return value


def _number(value: Any, path: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, "expected a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError(path, "expected a finite number")
    if abs(value) > 2**53:  # beyond what both databases compare exactly
        raise ValidationError(path, "expected a number between -2^53 and 2^53")
    return value


def _money(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError(path, "expected an amount in yuan")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValidationError(path, "expected an amount in yuan") from exc
    if not amount.is_finite() or abs(amount) > Decimal(10) ** 13:
        raise ValidationError(path, "expected an amount in yuan")
    return amount.quantize(Decimal("0.01"))


FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(9998, 12, 31)


def _date(value: Any, path: str) -> datetime.date:
    try:
        day = datetime.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(path, "expected a date YYYY-MM-DD") from exc
    if not FIRST_DAY <= day <= LAST_DAY:  # the time-zone arithmetic must stay in range
        raise ValidationError(path, "expected a date from 1900-01-01 to 9998-12-31")
    return day


def _int_list(value: Any, path: str) -> list[int]:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise ValidationError(path, "expected a non-empty list of ids")
    return [_whole(v, f"{path}[{i}]", 1, 2**62) for i, v in enumerate(value)]


def _text_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise ValidationError(path, "expected a non-empty list")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v or len(v) > 255:
            raise ValidationError(f"{path}[{i}]", "expected a text")
    return list(value)


# -- references between segments -----------------------------------------------------------


def referenced_segments(rule: dict) -> list[int]:
    """The ids of the segments a (validated) rule refers to, directly."""
    found: list[int] = []

    def walk(node: dict) -> None:
        if node["type"] in ("and", "or"):
            for child in node["rules"]:
                walk(child)
        elif node["type"] == "not":
            walk(node["rule"])
        elif node["type"] == "segment":
            found.append(node["value"])

    walk(rule)
    return found


def _check_cycles(rule: dict, ctx: RuleContext, path: str) -> None:
    """A segment may use another's membership, never (through others) its own."""
    from siyu.segments.models import Segment

    rules = dict(
        Segment.objects.filter(workspace=ctx.workspace, archived_at__isnull=True).values_list(
            "pk", "rule"
        )
    )
    seen: set[int] = set()
    stack = [(s, [s]) for s in referenced_segments(rule)]
    while stack:
        current, trail = stack.pop()
        if ctx.segment_id is not None and current == ctx.segment_id:
            raise ValidationError(
                path, "the rule refers to its own segment (through %(trail)s)", {"trail": trail}
            )
        if current in seen:
            continue
        seen.add(current)
        for ref in referenced_segments(rules.get(current) or {"type": "and", "rules": []}):
            stack.append((ref, [*trail, ref]))

"""A validated rule tree (rules.py) compiled to one SQL statement over the workspace's
contacts, through Django's query compiler so that the same code runs on SQLite and
PostgreSQL.

Every condition is two-valued: it is TRUE or FALSE for every contact, never NULL, so NOT
means "everyone else". Conditions over other tables become `id IN (SELECT contact_id ...
GROUP BY ... HAVING ...)`, which PostgreSQL runs as one hashed semi-join rather than a
subquery per contact; a condition that a contact with no rows satisfies ("at most 2
orders") adds those contacts explicitly. Relative dates are fixed at compile time from
`now` in the workspace's time zone, so a refresh always compiles afresh."""

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import ExtractDay, ExtractMonth, Mod, Substr
from django.db.models.lookups import GreaterThanOrEqual, LessThan, LessThanOrEqual

from siyu.contacts.models import Consent, Contact, ContactTag, Identity
from siyu.core.models import Workspace
from siyu.segments import catalog
from siyu.segments.models import ContactScore, SegmentMember
from siyu.tracking.models import (
    ContactStats,
    DailyEventCount,
    Event,
    Order,
    OrderItem,
    ResolvedEvent,
)

# Explicit constants: Django drops an empty Q() from an OR, which would turn "anything or
# X" into "X".
TRUE = Q(pk__isnull=False)
FALSE = Q(pk__isnull=True)
# message types counted in DailyEventCount under their own name
TYPE_EVENTS = ("page", "screen", "identify")


@dataclass(frozen=True)
class Clock:
    """What a rule compiles against: `now` and its calendar day in the workspace's time zone,
    and, in real time, the few contacts being re-evaluated (pushed into every subquery, so
    that "no order in 7 days" does not aggregate everyone's orders for one contact)."""

    now: datetime.datetime
    tz: ZoneInfo
    only: tuple[int, ...] | None = None

    @property
    def today(self) -> datetime.date:
        return self.now.astimezone(self.tz).date()

    def start(self, day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time.min, tzinfo=self.tz)

    def window_days(self, window: dict | None) -> tuple[datetime.date | None, datetime.date | None]:
        """The first and last day of a window (either may be open)."""
        if not window:
            return None, None
        if "last_days" in window:
            return self.today - datetime.timedelta(days=window["last_days"] - 1), None
        first = window.get("from")
        last = window.get("to")
        return (
            datetime.date.fromisoformat(first) if first else None,
            datetime.date.fromisoformat(last) if last else None,
        )

    def window_times(self, window: dict | None) -> dict[str, datetime.datetime]:
        """The window as bounds on a timestamp: {"gte": ..., "lt": ...}."""
        first, last = self.window_days(window)
        bounds = {}
        if first:
            bounds["gte"] = self.start(first)
        if last:
            bounds["lt"] = self.start(last + datetime.timedelta(days=1))
        return bounds


def read_tables() -> list[str]:
    """The tables compiled rules read (their statistics matter to the plan)."""
    models = (Contact, ContactTag, Identity, Consent, ContactStats, DailyEventCount, Event)
    models += (ResolvedEvent, Order, OrderItem, ContactScore, SegmentMember)
    return [m._meta.db_table for m in models]


def segment_queryset(
    workspace: Workspace, rule: dict, now: datetime.datetime, only: list[int] | None = None
) -> QuerySet:
    """The contacts the rule selects now (of `only` these, when given): one SELECT."""
    ids = tuple(only) if only is not None else None
    clock = Clock(now=now, tz=ZoneInfo(workspace.timezone or "Asia/Shanghai"), only=ids)
    contacts = Contact.objects.filter(workspace_id=workspace.pk)
    if ids is not None:
        contacts = contacts.filter(pk__in=ids)
    return contacts.filter(compile_rule(rule, workspace.pk, clock))


def compile_rule(node: dict, ws: int, clock: Clock) -> Q:
    kind = node["type"]
    if kind == "and":
        q = TRUE
        for child in node["rules"]:
            q &= compile_rule(child, ws, clock)
        return q
    if kind == "or":
        if not node["rules"]:
            return FALSE
        q = compile_rule(node["rules"][0], ws, clock)
        for child in node["rules"][1:]:
            q |= compile_rule(child, ws, clock)
        return q
    if kind == "not":
        return ~compile_rule(node["rule"], ws, clock)
    return COMPILERS[kind](node, ws, clock)


# -- comparisons ----------------------------------------------------------------------------


def compare(path: str, type_: str, op: str, value: Any, clock: Clock, nullable: bool) -> Q:
    """A column (or JSON key) compared as the catalog's type says. Django adds the
    `IS NOT NULL` that keeps a negation two-valued for nullable columns."""
    if op == "is_set":
        return _is_set(path, type_, nullable)
    if op == "not_set":
        return ~_is_set(path, type_, nullable)
    if type_ == "money":
        value = _fen(value)
        type_ = "number"
    if type_ in ("date", "datetime"):
        return _compare_time(path, type_, op, value, clock)
    if type_ == "bool":
        return Q(**{path: op == "is_true"})
    lookups = {
        "eq": "exact",
        "in": "in",
        "gt": "gt",
        "gte": "gte",
        "lt": "lt",
        "lte": "lte",
        "contains": "icontains",
        "starts_with": "istartswith",
    }
    if op == "neq":
        return ~Q(**{path: value})
    if op == "not_in":
        return ~Q(**{f"{path}__in": value})
    if op == "not_contains":
        return ~Q(**{f"{path}__icontains": value})
    if type_ == "text" and op == "eq":
        return Q(**{path: value})
    if op == "between":
        return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
    return Q(**{f"{path}__{lookups[op]}": value})


def _is_set(path: str, type_: str, nullable: bool) -> Q:
    q = Q(**{f"{path}__isnull": False}) if nullable else TRUE
    if type_ in ("text", "choice"):  # a blank text is "not set"
        q &= ~Q(**{path: ""})
    return q


def _compare_time(path: str, type_: str, op: str, value: Any, clock: Clock) -> Q:
    day = datetime.timedelta(days=1)
    if type_ == "date":
        today = clock.today
        if path.startswith("attributes__"):  # kept in JSON as "YYYY-MM-DD" texts
            return _compare_json_date(path, op, value, today)
        if op == "on":
            return Q(**{path: _day(value)})
        if op == "before":
            return Q(**{f"{path}__lt": _day(value)})
        if op == "after":
            return Q(**{f"{path}__gt": _day(value)})
        if op == "between":
            return Q(**{f"{path}__range": (_day(value[0]), _day(value[1]))})
        if op == "within_last_days":
            return Q(**{f"{path}__range": (today - value * day, today)})
        if op == "more_than_days_ago":
            return Q(**{f"{path}__lt": today - value * day})
        if op == "within_next_days":
            return Q(**{f"{path}__range": (today, today + value * day)})
        if op == "anniversary_within_next_days":
            return _anniversary(path, today, value)
    else:
        now = clock.now
        if op == "on":
            first = clock.start(_day(value))
            return Q(**{f"{path}__gte": first, f"{path}__lt": first + day})
        if op == "before":
            return Q(**{f"{path}__lt": clock.start(_day(value))})
        if op == "after":
            return Q(**{f"{path}__gte": clock.start(_day(value) + day)})
        if op == "between":
            first, last = clock.start(_day(value[0])), clock.start(_day(value[1]) + day)
            return Q(**{f"{path}__gte": first, f"{path}__lt": last})
        if op == "within_last_days":
            return Q(**{f"{path}__gte": now - value * day})
        if op == "more_than_days_ago":
            return Q(**{f"{path}__lt": now - value * day})
        if op == "within_next_days":
            return Q(**{f"{path}__gte": now, f"{path}__lt": now + value * day})
    raise ValueError(f"operator {op} on {type_}")  # rules.py never lets one through


def _compare_json_date(path: str, op: str, value, today: datetime.date) -> Q:
    if op == "anniversary_within_next_days":
        return _anniversary(path, today, value)
    day = datetime.timedelta(days=1)
    low = high = None
    if op == "on":
        low = high = value
    elif op == "before":
        high = _iso(_day(value) - day)
    elif op == "after":
        low = _iso(_day(value) + day)
    elif op == "between":
        low, high = value
    elif op == "within_last_days":
        low, high = _iso(today - value * day), _iso(today)
    elif op == "more_than_days_ago":
        high = _iso(today - (value + 1) * day)
    elif op == "within_next_days":
        low, high = _iso(today), _iso(today + value * day)
    q = Q()
    if low:
        q &= Q(**{f"{path}__gte": low})
    if high:
        q &= Q(**{f"{path}__lte": high})
    return q


def _iso(day: datetime.date) -> str:
    return day.isoformat()


def _anniversary(path: str, today: datetime.date, days: int) -> Q:
    """The date's month and day fall within today .. today + days (a birthday soon). The
    window wraps at the year's end; 29 February counts on the 29th only."""
    last = today + datetime.timedelta(days=min(days, 365))
    if "__" in path:  # a date kept in JSON as "YYYY-MM-DD": compare "MM-DD" texts
        month_day = Substr(KeyTextTransform(path.split("__", 1)[1], "attributes"), 6, 5)
        first_key, last_key = today.strftime("%m-%d"), last.strftime("%m-%d")
        present = Q()
    else:  # a date column: compare month * 100 + day
        month_day = ExtractMonth(path) * 100 + ExtractDay(path)
        first_key, last_key = today.month * 100 + today.day, last.month * 100 + last.day
        present = Q(**{f"{path}__isnull": False})
    after_first = Q(GreaterThanOrEqual(month_day, Value(first_key)))
    before_last = Q(LessThanOrEqual(month_day, Value(last_key)))
    inside = after_first & before_last if first_key <= last_key else after_first | before_last
    if days >= 365:  # a whole year: every date comes round
        inside = TRUE if "__" not in path else Q(attributes__has_key=path.split("__", 1)[1])
    return present & inside


def _day(value: str) -> datetime.date:
    return datetime.date.fromisoformat(value)


def _fen(value: Any) -> Any:
    if isinstance(value, list):
        return [_fen(v) for v in value]
    return int(Decimal(value) * 100)


def _zero_matches(type_: str, op: str, value: Any) -> bool:
    """Does a contact with no rows (count 0, spend 0, no date) satisfy the comparison?"""
    if type_ in ("date", "datetime") or op in ("is_set", "not_set"):
        return op == "not_set"
    if type_ == "money":
        value = _fen(value)
    checks = {
        "eq": lambda: value == 0,
        "neq": lambda: value != 0,
        "gt": lambda: 0 > value,
        "gte": lambda: 0 >= value,
        "lt": lambda: 0 < value,
        "lte": lambda: 0 <= value,
        "between": lambda: value[0] <= 0 <= value[1],
    }
    return checks[op]()


def _members(rows: QuerySet, clock: "Clock") -> Q:
    if clock.only is not None:  # real time: every subquery about these contacts only
        rows = rows.filter(contact_id__in=clock.only)
    return Q(pk__in=rows.values("contact_id"))


# -- node compilers -------------------------------------------------------------------------


def _field(node: dict, ws: int, clock: Clock) -> Q:
    field = catalog.CONTACT_FIELDS[node["field"]]
    path = field.column or node["field"]
    return compare(path, field.type, node["op"], node["value"], clock, field.nullable)


def _attribute(node: dict, ws: int, clock: Clock) -> Q:
    from siyu.contacts.models import AttributeDefinition

    from .rules import ATTRIBUTE_TYPES

    key, op = node["key"], node["op"]
    definition = AttributeDefinition.objects.only("type").get(workspace_id=ws, key=key)
    type_ = ATTRIBUTE_TYPES[definition.type]
    has_key = Q(attributes__has_key=key)
    if op == "is_set":
        return has_key
    if op == "not_set":
        return ~has_key
    # the key is present: keeps the negation two-valued when it is not
    return has_key & compare(f"attributes__{key}", type_, op, node["value"], clock, False)


def _tags(node: dict, ws: int, clock: Clock) -> Q:
    tagged = ContactTag.objects.filter(workspace_id=ws, tag_id__in=node["value"])
    if node["op"] == "all":
        rows = (
            tagged.values("contact_id")
            .annotate(n=Count("tag_id", distinct=True))
            .filter(n=len(node["value"]))
        )
        return _members(rows, clock)
    q = _members(tagged, clock)
    return ~q if node["op"] == "none" else q


def _identity(node: dict, ws: int, clock: Clock) -> Q:
    q = _members(Identity.objects.filter(workspace_id=ws, kind=node["value"]), clock)
    return q if node["op"] == "has" else ~q


def _consent(node: dict, ws: int, clock: Clock) -> Q:
    rows = Consent.objects.filter(workspace_id=ws, channel=node["channel"])
    if node["value"] == "unknown":
        q = ~_members(rows, clock)
    else:
        q = _members(rows.filter(status=node["value"]), clock)
    return q if node["op"] == "is" else ~q


ORDER_AGGREGATES = {
    "count": Count("id"),
    "spend": Sum(F("total_fen") - F("refunded_fen")),
    "first_order_at": Min("placed_at"),
    "last_order_at": Max("placed_at"),
}


def _orders(node: dict, ws: int, clock: Clock) -> Q:
    metric, op, value = node["metric"], node["op"], node["value"]
    field = catalog.ORDER_METRICS[metric]
    if node["window"] is None and metric in ("count", "spend", "last_order_at"):
        # kept on ingest: one row per contact with orders or events
        column = {"count": "order_count", "spend": "net_spend_fen"}.get(metric, metric)
        rows = ContactStats.objects.filter(workspace_id=ws, order_count__gt=0)
        matched = rows.filter(compare(column, field.type, op, value, clock, field.nullable))
    else:
        rows = Order.objects.filter(
            workspace_id=ws,
            contact_id__isnull=False,
            **{f"placed_at__{k}": v for k, v in clock.window_times(node["window"]).items()},
        )
        if metric == "average":
            aggregate = ExpressionWrapper(
                Sum(F("total_fen") - F("refunded_fen")) * 1.0 / Count("id"),
                output_field=FloatField(),
            )
        else:
            aggregate = ORDER_AGGREGATES[metric]
        matched = (
            rows.values("contact_id")
            .annotate(metric_value=aggregate)
            .filter(compare("metric_value", field.type, op, value, clock, field.nullable))
        )
    q = _members(matched, clock)
    if _zero_matches(field.type, op, value):
        q |= ~_members(rows, clock)
    return q


def _bought(node: dict, ws: int, clock: Clock) -> Q:
    column = "product_id" if node["by"] == "product" else "category"
    rows = OrderItem.objects.filter(
        workspace_id=ws,
        order__contact_id__isnull=False,
        **{f"{column}__in": node["value"]},
        **{f"order__placed_at__{k}": v for k, v in clock.window_times(node["window"]).items()},
    )
    if clock.only is not None:
        rows = rows.filter(order__contact_id__in=clock.only)
    q = Q(pk__in=rows.values("order__contact_id"))
    return q if node["op"] == "any" else ~q


def _event(node: dict, ws: int, clock: Clock) -> Q:
    op, value = node["op"], node["value"]
    if node["where"]:
        rows = _raw_events(node, ws, clock)
        counted = rows.values("contact_id").annotate(n=Count("id"))
    else:
        first, last = clock.window_days(node["window"])
        rows = DailyEventCount.objects.filter(workspace_id=ws, event=node["event"])
        if first:
            rows = rows.filter(day__gte=first)
        if last:
            rows = rows.filter(day__lte=last)
        counted = rows.values("contact_id").annotate(n=Sum("count"))
    q = _members(counted.filter(compare("n", "number", op, value, clock, False)), clock)
    if _zero_matches("number", op, value):
        q |= ~_members(rows, clock)
    return q


def _raw_events(node: dict, ws: int, clock: Clock) -> QuerySet:
    name = node["event"]
    # processed events with a contact: the name and time go through the event's index, the
    # resolution joins by primary key. Its contact is named as _members expects; these rows
    # are only read through values() (on instances, Event.contact_id is a read-only property).
    rows = Event.objects.filter(workspace_id=ws, resolution__contact_id__isnull=False)
    rows = rows.annotate(contact_id=F("resolution__contact_id"))
    rows = rows.filter(type=name) if name in TYPE_EVENTS else rows.filter(type="track", event=name)
    rows = rows.filter(
        **{f"timestamp__{k}": v for k, v in clock.window_times(node["window"]).items()}
    )
    for n, flt in enumerate(node["where"]):
        type_ = catalog.EVENT_PROPERTY_TYPES[flt["kind"]]
        # the property as one key (a name like "a__b" or "contains" is not a lookup path)
        path = f"where_{n}"
        rows = rows.annotate(**{path: KeyTransform(flt["property"], "properties")})
        has_key = Q(properties__has_key=flt["property"])
        if flt["op"] == "is_set":
            rows = rows.filter(has_key)
        elif flt["op"] == "not_set":
            rows = rows.exclude(has_key)
        else:
            rows = rows.filter(
                has_key & compare(path, type_, flt["op"], flt["value"], clock, False)
            )
    return rows


def _event_time(node: dict, ws: int, clock: Clock) -> Q:
    rows = DailyEventCount.objects.filter(workspace_id=ws, event=node["event"])
    aggregate = Min("day") if node["which"] == "first" else Max("day")
    dated = rows.values("contact_id").annotate(d=aggregate)
    op, value = node["op"], node["value"]
    if op == "within_last_days":  # as event windows: today and the N - 1 days before
        condition = Q(d__gte=clock.today - datetime.timedelta(days=value - 1))
    elif op == "more_than_days_ago":  # the complement
        condition = Q(d__lt=clock.today - datetime.timedelta(days=value - 1))
    else:
        condition = compare("d", "date", op, value, clock, False)
    return _members(dated.filter(condition), clock)


def _score(node: dict, ws: int, clock: Clock) -> Q:
    field = catalog.SCORE_FIELDS[node["field"]]
    column = field.column or node["field"]
    condition = compare(column, field.type, node["op"], node["value"], clock, field.nullable)
    return _members(ContactScore.objects.filter(condition, workspace_id=ws), clock)


def _segment(node: dict, ws: int, clock: Clock) -> Q:
    q = _members(SegmentMember.objects.filter(workspace_id=ws, segment_id=node["value"]), clock)
    return q if node["op"] == "in" else ~q


def sample_bucket(contact_id: int, seed: str) -> int:
    """The contact's stable bucket 0..9999 for a seed: the same arithmetic as the SQL."""
    h = (contact_id * 2654435761 + seed_number(seed)) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x5BD1E995) & 0xFFFFFFFF
    h ^= h >> 15
    return h % 10000


def seed_number(seed: str) -> int:
    """A text seed as a 31-bit number (FNV-1a), so that the SQL stays integer-only."""
    h = 0x811C9DC5
    for byte in seed.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h & 0x7FFFFFFF


def _xor(a, b):
    # SQLite has no XOR operator: a ^ b == (a | b) - (a & b)
    return a.bitor(b) - a.bitand(b)


def stable_bucket(contact_id, seed: str):
    """SQL for sample_bucket: the bucket 0..9999 of the contact id expression for a seed
    (holdouts and random splits use it too)."""
    mask = 0xFFFFFFFF
    h = (contact_id * 2654435761 + seed_number(seed)).bitand(mask)
    h = _xor(h, h.bitrightshift(16))
    h = (h * 0x5BD1E995).bitand(mask)
    h = _xor(h, h.bitrightshift(15))
    return Mod(h, 10000, output_field=IntegerField())


def _sample(node: dict, ws: int, clock: Clock) -> Q:
    threshold = round(node["value"] * 100)
    return Q(LessThan(stable_bucket(F("id"), node["seed"]), threshold))


COMPILERS = {
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

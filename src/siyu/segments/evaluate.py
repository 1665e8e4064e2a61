"""A reference evaluator: the same rule semantics as compiler.py, in plain Python over one
contact's rows at a time. The product never uses it to select contacts (rule of thumb 6);
tests compare it with the SQL on random rules, and bench/segments.py times it as the
per-contact baseline."""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from siyu.contacts.models import Consent, Contact, ContactTag, Identity
from siyu.segments import catalog
from siyu.segments.compiler import TYPE_EVENTS, Clock, sample_bucket
from siyu.segments.models import ContactScore, SegmentMember
from siyu.tracking.models import DailyEventCount, Event, Order, OrderItem


@dataclass
class Record:
    """Everything a rule can look at for one contact."""

    contact: Contact
    tags: set[int] = field(default_factory=set)
    identities: set[str] = field(default_factory=set)
    consents: dict[str, str] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    items: list[tuple[datetime.datetime, str, str]] = field(default_factory=list)
    daily: list[tuple[datetime.date, str, int]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    score: ContactScore | None = None
    segments: set[int] = field(default_factory=set)


def load_records(workspace_id: int, contact_ids: list[int], raw_events: bool = True) -> list:
    """The records of these contacts, with a handful of queries (not one per contact)."""
    contacts = Contact.objects.filter(workspace_id=workspace_id, pk__in=contact_ids)
    records = {c.pk: Record(c) for c in contacts}
    ids = list(records)
    for cid, tag in ContactTag.objects.filter(contact_id__in=ids).values_list(
        "contact_id", "tag_id"
    ):
        records[cid].tags.add(tag)
    for cid, kind in Identity.objects.filter(contact_id__in=ids).values_list("contact_id", "kind"):
        records[cid].identities.add(kind)
    for cid, channel, status in Consent.objects.filter(contact_id__in=ids).values_list(
        "contact_id", "channel", "status"
    ):
        records[cid].consents[channel] = status
    for order in Order.objects.filter(contact_id__in=ids):
        records[order.contact_id].orders.append(order)
    for cid, placed, product, category in OrderItem.objects.filter(
        order__contact_id__in=ids
    ).values_list("order__contact_id", "order__placed_at", "product_id", "category"):
        records[cid].items.append((placed, product, category))
    for cid, day, event, count in DailyEventCount.objects.filter(contact_id__in=ids).values_list(
        "contact_id", "day", "event", "count"
    ):
        records[cid].daily.append((day, event, count))
    if raw_events:
        # event.contact_id reads the resolution, selected with the event
        events = Event.objects.filter(resolution__contact_id__in=ids).select_related("resolution")
        for event in events.only("type", "event", "properties", "timestamp", "resolution__contact"):
            records[event.contact_id].events.append(event)
    for score in ContactScore.objects.filter(contact_id__in=ids):
        records[score.contact_id].score = score
    members = defaultdict(set)
    for cid, sid in SegmentMember.objects.filter(contact_id__in=ids).values_list(
        "contact_id", "segment_id"
    ):
        members[cid].add(sid)
    for cid, segs in members.items():
        records[cid].segments = segs
    return list(records.values())


def matches(node: dict, record: Record, clock: Clock, attribute_types: dict[str, str]) -> bool:
    kind = node["type"]
    if kind == "and":
        return all(matches(n, record, clock, attribute_types) for n in node["rules"])
    if kind == "or":
        return any(matches(n, record, clock, attribute_types) for n in node["rules"])
    if kind == "not":
        return not matches(node["rule"], record, clock, attribute_types)
    return LEAVES[kind](node, record, clock, attribute_types)


def compare(type_: str, op: str, value: Any, x: Any, clock: Clock) -> bool:
    if op in ("is_set", "not_set"):
        present = x is not None and (type_ not in ("text", "choice") or x != "")
        return present if op == "is_set" else not present
    if type_ == "money":
        value = [_fen(v) for v in value] if isinstance(value, list) else _fen(value)
        type_ = "number"
    if op == "neq":
        return not (x is not None and x == value)
    if op == "not_in":
        return not (x is not None and x in value)
    if op == "not_contains":
        return not (x is not None and value.lower() in x.lower())
    if x is None:
        return False
    if type_ in ("date", "datetime"):
        return _compare_time(type_, op, value, x, clock)
    if type_ == "bool":
        return x is (op == "is_true")
    if op == "eq":
        return x == value
    if op == "in":
        return x in value
    if op == "contains":
        return value.lower() in x.lower()
    if op == "starts_with":
        return x.lower().startswith(value.lower())
    if op == "between":
        return value[0] <= x <= value[1]
    return {"gt": x > value, "gte": x >= value, "lt": x < value, "lte": x <= value}[op]


def _compare_time(type_: str, op: str, value: Any, x: Any, clock: Clock) -> bool:
    one = datetime.timedelta(days=1)
    if type_ == "date":
        day = x if isinstance(x, datetime.date) else datetime.date.fromisoformat(x)
        today = clock.today
        if op == "anniversary_within_next_days":
            if value >= 365:
                return True
            last = today + datetime.timedelta(days=min(value, 365))
            key, first_key, last_key = (
                (day.month, day.day),
                (today.month, today.day),
                (last.month, last.day),
            )
            if first_key <= last_key:
                return first_key <= key <= last_key
            return key >= first_key or key <= last_key
        bounds = {
            "within_last_days": lambda: (today - value * one, today),
            "more_than_days_ago": lambda: (None, today - (value + 1) * one),
            "within_next_days": lambda: (today, today + value * one),
            "on": lambda: (_d(value), _d(value)),
            "before": lambda: (None, _d(value) - one),
            "after": lambda: (_d(value) + one, None),
            "between": lambda: (_d(value[0]), _d(value[1])),
        }[op]()
        low, high = bounds
        return (low is None or day >= low) and (high is None or day <= high)
    now = clock.now
    if op == "on":
        return clock.start(_d(value)) <= x < clock.start(_d(value) + one)
    if op == "before":
        return x < clock.start(_d(value))
    if op == "after":
        return x >= clock.start(_d(value) + one)
    if op == "between":
        return clock.start(_d(value[0])) <= x < clock.start(_d(value[1]) + one)
    if op == "within_last_days":
        return x >= now - value * one
    if op == "more_than_days_ago":
        return x < now - value * one
    if op == "within_next_days":
        return now <= x < now + value * one
    raise ValueError(op)


def _d(value: str) -> datetime.date:
    return datetime.date.fromisoformat(value)


def _fen(value: Any) -> int:
    return int(Decimal(value) * 100)


def _in_window(moment: datetime.datetime, window: dict | None, clock: Clock) -> bool:
    bounds = clock.window_times(window)
    return ("gte" not in bounds or moment >= bounds["gte"]) and (
        "lt" not in bounds or moment < bounds["lt"]
    )


def _day_in_window(day: datetime.date, window: dict | None, clock: Clock) -> bool:
    first, last = clock.window_days(window)
    return (first is None or day >= first) and (last is None or day <= last)


def _zero(type_: str, op: str, value: Any, clock: Clock) -> bool:
    if type_ in ("date", "datetime") or op in ("is_set", "not_set"):
        return op == "not_set"
    return compare(type_, op, value, 0, clock)


def _field(node, record, clock, attribute_types) -> bool:
    f = catalog.CONTACT_FIELDS[node["field"]]
    x = getattr(record.contact, f.column or node["field"])
    return compare(f.type, node["op"], node["value"], x, clock)


def _attribute(node, record, clock, attribute_types) -> bool:
    attributes = record.contact.attributes or {}
    present = node["key"] in attributes
    if node["op"] == "is_set":
        return present
    if node["op"] == "not_set":
        return not present
    x = attributes.get(node["key"])
    type_ = attribute_types[node["key"]]
    return present and compare(type_, node["op"], node["value"], x, clock)


def _tags(node, record, clock, attribute_types) -> bool:
    wanted = set(node["value"])
    if node["op"] == "all":
        return wanted <= record.tags
    hit = bool(wanted & record.tags)
    return hit if node["op"] == "any" else not hit


def _identity(node, record, clock, attribute_types) -> bool:
    has = node["value"] in record.identities
    return has if node["op"] == "has" else not has


def _consent(node, record, clock, attribute_types) -> bool:
    status = record.consents.get(node["channel"], "unknown")
    same = status == node["value"]
    return same if node["op"] == "is" else not same


def _orders(node, record, clock, attribute_types) -> bool:
    metric, op, value = node["metric"], node["op"], node["value"]
    type_ = catalog.ORDER_METRICS[metric].type
    orders = [o for o in record.orders if _in_window(o.placed_at, node["window"], clock)]
    if not orders:
        return _zero(type_, op, value, clock)
    spend = sum(o.total_fen - o.refunded_fen for o in orders)
    x = {
        "count": lambda: len(orders),
        "spend": lambda: spend,
        "average": lambda: spend / len(orders),
        "first_order_at": lambda: min(o.placed_at for o in orders),
        "last_order_at": lambda: max(o.placed_at for o in orders),
    }[metric]()
    return compare(type_, op, value, x, clock)


def _bought(node, record, clock, attribute_types) -> bool:
    index = 1 if node["by"] == "product" else 2
    wanted = set(node["value"])
    hit = any(
        item[index] in wanted and _in_window(item[0], node["window"], clock)
        for item in record.items
    )
    return hit if node["op"] == "any" else not hit


def _event(node, record, clock, attribute_types) -> bool:
    op, value = node["op"], node["value"]
    if node["where"]:
        n = sum(1 for e in record.events if _raw_event_matches(e, node, clock))
    else:
        n = sum(
            count
            for day, name, count in record.daily
            if name == node["event"] and _day_in_window(day, node["window"], clock)
        )
    if n == 0:
        return _zero("number", op, value, clock)
    return compare("number", op, value, n, clock)


def _raw_event_matches(event: Event, node: dict, clock: Clock) -> bool:
    name = node["event"]
    if name in TYPE_EVENTS:
        if event.type != name:
            return False
    elif event.type != "track" or event.event != name:
        return False
    if not _in_window(event.timestamp, node["window"], clock):
        return False
    props = event.properties or {}
    for flt in node["where"]:
        present = flt["property"] in props
        if flt["op"] == "is_set":
            ok = present
        elif flt["op"] == "not_set":
            ok = not present
        else:
            type_ = catalog.EVENT_PROPERTY_TYPES[flt["kind"]]
            x = props.get(flt["property"])
            ok = present and compare(type_, flt["op"], flt["value"], x, clock)
        if not ok:
            return False
    return True


def _event_time(node, record, clock, attribute_types) -> bool:
    days = [day for day, name, _ in record.daily if name == node["event"]]
    if not days:
        return False
    day = min(days) if node["which"] == "first" else max(days)
    op, value = node["op"], node["value"]
    if op in ("within_last_days", "more_than_days_ago"):  # as event windows
        inside = day >= clock.today - datetime.timedelta(days=value - 1)
        return inside if op == "within_last_days" else not inside
    return compare("date", op, value, day, clock)


def _score(node, record, clock, attribute_types) -> bool:
    if record.score is None:
        return False
    f = catalog.SCORE_FIELDS[node["field"]]
    x = getattr(record.score, f.column or node["field"])
    return compare(f.type, node["op"], node["value"], x, clock)


def _segment(node, record, clock, attribute_types) -> bool:
    member = node["value"] in record.segments
    return member if node["op"] == "in" else not member


def _sample(node, record, clock, attribute_types) -> bool:
    return sample_bucket(record.contact.pk, node["seed"]) < round(node["value"] * 100)


LEAVES = {
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

"""The demo brand's year of activity (siyu.demo.activity) and its segments and CLV fit
(siyu.demo.segments): orders, refunds and events that agree with each other, varied stages
and tiers, non-empty example segments, a CLV fit, aggregates equal to a recount from the
raw rows, and the same activity for the same seed."""

import datetime
import hashlib
import io
import json
import statistics
import zoneinfo
from collections import Counter

import pytest
from django.core.management import call_command
from django.db.models import Sum

from siyu.contacts.models import Contact
from siyu.core.models import AuditLog, Workspace
from siyu.demo import data
from siyu.demo.brand import load_demo
from siyu.demo.segments import EXAMPLES, STATIC_NAME
from siyu.segments.models import (
    ClvFit,
    ContactScore,
    LifecycleStage,
    Segment,
    SegmentKind,
    SegmentMember,
    ValueTier,
)
from siyu.tracking import aggregates
from siyu.tracking.models import (
    ContactStats,
    DailyEventCount,
    Event,
    Order,
    OrderItem,
    OrderRefund,
    OrderSource,
    OrderStatus,
    Product,
    QueuedEvent,
    ResolvedEvent,
)
from siyu.tracking.orders import parse_order

NOW = datetime.datetime(2026, 11, 20, 8, 0, tzinfo=datetime.UTC)
CONTACTS = 300
ECOMMERCE = {"Product Viewed", "Product Added", "Order Completed", "Coupon Claimed"}


@pytest.fixture(autouse=True)
def demo_home(settings, tmp_path):
    """Each test gets its own SIYU_HOME (the demo writes its logins there)."""
    settings.SIYU_HOME = tmp_path
    return tmp_path


@pytest.fixture
def demo(db):
    return load_demo(seed=2026, contacts=CONTACTS, now=NOW)


def test_orders_refunds_and_events_agree(demo):
    ws = demo.workspace
    orders = {o.external_id: o for o in Order.objects.filter(workspace=ws)}
    assert demo.activity.orders == len(orders) > 500
    assert {o.source for o in orders.values()} == {OrderSource.EVENT, OrderSource.IMPORT}
    assert {o.channel for o in orders.values()} == {"小程序", "门店", "企微"}
    assert {o.status for o in orders.values()} == set(OrderStatus.values)
    assert all(o.placed_at <= NOW and o.contact_id for o in orders.values())

    # money: total = lines - discount + shipping; refunds add up to refunded_fen
    lines = dict(
        OrderItem.objects.filter(workspace=ws)
        .values("order_id")
        .annotate(n=Sum("line_total_fen"))
        .values_list("order_id", "n")
    )
    refunded = dict(
        OrderRefund.objects.filter(workspace=ws)
        .values("order_id")
        .annotate(n=Sum("amount_fen"))
        .values_list("order_id", "n")
    )
    for o in orders.values():
        assert o.total_fen == lines[o.pk] - o.discount_fen + o.shipping_fen
        assert o.refunded_fen == refunded.get(o.pk, 0)
        if o.status == OrderStatus.REFUNDED:
            assert o.refunded_fen == o.total_fen
        elif o.status == OrderStatus.PARTIALLY_REFUNDED:
            assert 0 < o.refunded_fen < o.total_fen
        else:
            assert o.refunded_fen == 0

    # events: processed (a resolution each, with the event's time, none queued), attached,
    # Segment e-commerce names, unique message ids
    events = list(Event.objects.filter(workspace=ws).select_related("resolution"))
    assert demo.activity.events == len(events) > 2000
    assert {e.status for e in events} == {"processed"}
    assert all(e.resolution.contact_id and e.timestamp <= NOW for e in events)
    assert all(e.resolution.timestamp == e.timestamp for e in events)
    assert all(e.received_at <= e.resolution.processed_at <= NOW for e in events)
    assert {e.resolution.workspace_id for e in events} == {ws.pk}
    assert ResolvedEvent.objects.count() == len(events)
    assert not QueuedEvent.objects.filter(workspace=ws).exists()
    assert {e.type for e in events} == {"track", "page", "screen"}
    assert ECOMMERCE | {"Signed Up"} <= {e.event for e in events if e.type == "track"}
    assert len({e.message_id for e in events}) == len(events)

    # every mini-program order is its Order Completed event, which parses back to it
    completed = {e.message_id: e for e in events if e.event == "Order Completed"}
    by_event = [o for o in orders.values() if o.source == OrderSource.EVENT]
    assert len(by_event) == len(completed)
    items = {}
    for item in OrderItem.objects.filter(workspace=ws).order_by("id"):
        items.setdefault(item.order_id, []).append(
            (item.product_id, item.name, item.category, item.price_fen, item.quantity)
        )
    for order in by_event:
        event = completed[order.message_id]
        assert (event.resolution.contact_id, event.timestamp) == (
            order.contact_id,
            order.placed_at,
        )
        parsed = parse_order(event.properties, ws, id_key="order_id")
        assert parsed.external_id == order.external_id
        assert (parsed.total_fen, parsed.discount_fen, parsed.shipping_fen, parsed.channel) == (
            order.total_fen,
            order.discount_fen,
            order.shipping_fen,
            order.channel,
        )
        parsed_lines = sorted(
            (i.product_id, i.name, i.category, i.price_fen, i.quantity) for i in parsed.items
        )
        assert parsed_lines and parsed_lines == sorted(items[order.pk])

    # the catalog: the brand's products, counted from the events that name them
    catalog = {p.product_id: p for p in data.PRODUCTS}
    products = list(Product.objects.filter(workspace=ws))
    assert len(products) == demo.activity.products >= 15
    views = Counter(e.properties["product_id"] for e in events if e.event == "Product Viewed")
    adds = Counter(e.properties["product_id"] for e in events if e.event == "Product Added")
    for p in products:
        assert (p.name, p.category, p.price_fen) == (
            catalog[p.product_id].name,
            catalog[p.product_id].category,
            catalog[p.product_id].price_fen,
        )
        assert (p.views, p.adds) == (views[p.product_id], adds[p.product_id])
        assert p.first_seen_at <= p.last_seen_at <= NOW

    # first / last seen cover every event and order of the contact
    contacts = {c.pk: c for c in Contact.objects.filter(workspace=ws)}
    for at, contact_id in [(e.timestamp, e.resolution.contact_id) for e in events] + [
        (o.placed_at, o.contact_id) for o in orders.values()
    ]:
        contact = contacts[contact_id]
        assert contact.first_seen_at <= at <= contact.last_seen_at
    assert AuditLog.objects.filter(workspace=ws, action="demo.activity").count() == 1


def test_stages_tiers_segments_and_clv(demo):
    ws = demo.workspace
    scores = ContactScore.objects.filter(workspace=ws)
    assert scores.count() == CONTACTS
    stages = Counter(scores.values_list("stage", flat=True))
    tiers = Counter(scores.values_list("tier", flat=True))
    assert set(stages) == set(LifecycleStage.values)
    assert set(tiers) == set(ValueTier.values)
    # most of a private-domain pool never buys; the big spenders are a minority
    assert tiers[ValueTier.NONE] > tiers[ValueTier.LOW] > tiers[ValueTier.MID]
    assert tiers[ValueTier.MID] > tiers[ValueTier.HIGH]
    assert len(set(scores.exclude(rfm_segment="").values_list("rfm_segment", flat=True))) >= 5

    segments = {s.name: s for s in Segment.objects.filter(workspace=ws)}
    assert sum(s.kind == SegmentKind.BUILTIN for s in segments.values()) == demo.segments.builtins
    for name, *_ in EXAMPLES:
        size = SegmentMember.objects.filter(segment=segments[name]).count()
        assert segments[name].size == size == demo.segments.sizes[name] > 0, name
    static = segments[STATIC_NAME]
    assert static.kind == SegmentKind.STATIC and static.size > 0
    # 沉睡高价值客户 is exactly what its rule says
    sleeping = set(
        SegmentMember.objects.filter(segment=segments["沉睡高价值客户"]).values_list(
            "contact_id", flat=True
        )
    )
    assert sleeping == set(
        scores.filter(tier__in=["high", "mid"], stage__in=["dormant", "churned"]).values_list(
            "contact_id", flat=True
        )
    )

    fit = ClvFit.objects.filter(workspace=ws).latest("id")
    assert fit == demo.segments.clv and fit.error == ""
    assert fit.params["bgnbd"] and fit.params["gamma_gamma"]
    assert fit.params["repeat_customers"] > 50
    buyers = set(Order.objects.filter(workspace=ws).values_list("contact_id", flat=True))
    alive = dict(scores.filter(p_alive__isnull=False).values_list("contact_id", "p_alive"))
    assert len(set(alive) & buyers) >= 0.9 * len(buyers)
    # the model tells those still buying from those who stopped
    stage_of = dict(scores.values_list("contact_id", "stage"))
    active = [p for c, p in alive.items() if stage_of[c] == LifecycleStage.ACTIVE]
    churned = [p for c, p in alive.items() if stage_of[c] == LifecycleStage.CHURNED]
    assert statistics.mean(churned) < statistics.mean(active) - 0.1


def _stats(ws) -> tuple[dict, dict]:
    stats = {
        s.contact_id: (s.order_count, s.net_spend_fen, s.last_order_at, s.last_event_at)
        for s in ContactStats.objects.filter(workspace=ws)
    }
    daily = {
        (d.contact_id, d.day, d.event): d.count
        for d in DailyEventCount.objects.filter(workspace=ws)
    }
    return stats, daily


def test_aggregates_equal_a_recount_and_a_rebuild(demo):
    ws = demo.workspace
    stats, daily = _stats(ws)
    # recounted here from the raw rows: a track event counts under its name, a page or
    # screen under its type, on its day in the workspace's time zone
    tz = zoneinfo.ZoneInfo(ws.timezone)
    want_daily: Counter = Counter()
    last_event: dict[int, datetime.datetime] = {}
    for e in Event.objects.filter(workspace=ws).select_related("resolution"):
        name = e.event if e.type == "track" else e.type
        cid = e.resolution.contact_id
        want_daily[(cid, e.timestamp.astimezone(tz).date(), name)] += 1
        last_event[cid] = max(last_event.get(cid, e.timestamp), e.timestamp)
    bought: dict[int, tuple[int, int, datetime.datetime]] = {}
    for o in Order.objects.filter(workspace=ws):
        n, spend, last = bought.get(o.contact_id, (0, 0, o.placed_at))
        bought[o.contact_id] = (n + 1, spend + o.total_fen - o.refunded_fen, max(last, o.placed_at))
    want = {
        cid: (*bought.get(cid, (0, 0, None)), last_event.get(cid))
        for cid in set(bought) | set(last_event)
    }
    assert stats == want
    assert daily == dict(want_daily)
    # and a rebuild gives the same rows
    aggregates.rebuild(ws)
    assert _stats(ws) == (stats, daily)


def _digest(ws) -> tuple[list[int], str]:
    """The workspace's activity with contacts by position (ids differ between loads)."""
    position = {
        pk: n
        for n, pk in enumerate(
            Contact.objects.filter(workspace=ws).order_by("pk").values_list("pk", flat=True)
        )
    }
    orders = list(
        Order.objects.filter(workspace=ws)
        .order_by("external_id")
        .values_list(
            "external_id",
            "contact_id",
            "total_fen",
            "refunded_fen",
            "status",
            "channel",
            "placed_at",
        )
    )
    items = list(
        OrderItem.objects.filter(workspace=ws)
        .order_by("order__external_id", "product_id")
        .values_list("order__external_id", "product_id", "quantity", "line_total_fen")
    )
    events = list(
        Event.objects.filter(workspace=ws)
        .order_by("message_id")
        .values_list(
            "message_id", "resolution__contact_id", "type", "event", "timestamp", "properties"
        )
    )
    seen = list(
        Contact.objects.filter(workspace=ws)
        .order_by("pk")
        .values_list("first_seen_at", "last_seen_at")
    )
    text = json.dumps(
        [
            [(*o[:1], position[o[1]], *o[2:6], o[6].isoformat()) for o in orders],
            items,
            [(*e[:1], position[e[1]], e[2], e[3], e[4].isoformat(), e[5]) for e in events],
            [(a.isoformat(), b.isoformat()) for a, b in seen],
        ],
        sort_keys=True,
        ensure_ascii=False,
    )
    return [o[2] for o in orders], hashlib.sha256(text.encode()).hexdigest()


def test_the_activity_is_deterministic(db):
    first = load_demo(seed=5, contacts=150, now=NOW).workspace
    totals, digest = _digest(first)
    assert totals
    first.delete()
    again = load_demo(seed=5, contacts=150, now=NOW).workspace
    assert again.pk != first.pk
    assert _digest(again) == (totals, digest)
    again.delete()
    other = load_demo(seed=6, contacts=150, now=NOW).workspace
    assert _digest(other)[1] != digest
    assert Workspace.objects.filter(slug="demo").count() == 1


def test_the_demo_command_reports_the_activity(db):
    out = io.StringIO()
    call_command("demo", "--no-serve", "--contacts", "120", stdout=out)
    text = out.getvalue()
    assert "orders" in text and "events" in text and "products" in text
    assert "上海高价值会员" in text and "CLV" in text

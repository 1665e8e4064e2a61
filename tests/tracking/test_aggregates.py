"""Per-contact aggregates and the daily event rollup: kept current on ingest, by the order
API and by merges, and always equal to what `rebuild_aggregates` computes from raw data."""

import datetime
import io
import itertools

import pytest
from django.core.management import CommandError, call_command

from siyu.contacts import actions as contact_actions
from siyu.contacts.actions.identity import find_identity
from siyu.tracking.models import ContactStats, DailyEventCount, Order
from siyu.tracking.resolve import process_pending_events
from siyu.tracking.tasks import process_pending

UTC = datetime.UTC
_ids = itertools.count()


def msg(type_="identify", **fields):
    return {"type": type_, "messageId": f"agg-{next(_ids)}", **fields}


@pytest.fixture
def send(collector, django_capture_on_commit_callbacks):
    def post(*messages, client=None):
        with django_capture_on_commit_callbacks(execute=True):
            response = (client or collector).post("/v1/batch", {"batch": list(messages)})
        assert response.status_code == 200, response.content
        return response

    return post


def contact_of(ws, kind, value):
    identity = find_identity(ws, kind, value, "")
    return identity.contact if identity else None


def snapshot():
    stats = sorted(
        ContactStats.objects.values_list(
            "workspace_id",
            "contact_id",
            "order_count",
            "net_spend_fen",
            "last_order_at",
            "last_channel",
            "last_event_at",
        )
    )
    daily = sorted(
        DailyEventCount.objects.values_list("workspace_id", "contact_id", "day", "event", "count")
    )
    return stats, daily


def daily_of(contact):
    return sorted(
        DailyEventCount.objects.filter(contact=contact).values_list("day", "event", "count")
    )


def rebuild(*args):
    out = io.StringIO()
    call_command("rebuild_aggregates", *args, stdout=out)
    return out.getvalue()


def test_daily_counts_bucket_by_the_workspace_time_zone(cast, send):
    assert cast.workspace.timezone == "Asia/Shanghai"
    send(
        msg("track", userId="u-1", event="Viewed", timestamp="2026-03-01T15:30:00Z"),
        msg("track", userId="u-1", event="Viewed", timestamp="2026-03-01T23:30:00Z"),
        msg("page", userId="u-1", name="Home", timestamp="2026-03-01T23:40:00Z"),
        msg("screen", userId="u-1", name="Cart", timestamp="2026-03-01T10:00:00Z"),
        msg(userId="u-1", timestamp="2026-03-01T10:00:00Z"),
        msg("group", userId="u-1", groupId="g-1", timestamp="2026-03-01T10:00:00Z"),
    )
    contact = contact_of(cast.workspace, "user_id", "u-1")
    d1, d2 = datetime.date(2026, 3, 1), datetime.date(2026, 3, 2)
    # 15:30 UTC is 23:30 in Shanghai, the same day; 23:30 UTC is 07:30 the next day there.
    # Group messages are not counted.
    assert daily_of(contact) == [
        (d1, "Viewed", 1),
        (d1, "identify", 1),
        (d1, "screen", 1),
        (d2, "Viewed", 1),
        (d2, "page", 1),
    ]
    stats = contact.stats
    assert stats.last_event_at == datetime.datetime(2026, 3, 1, 23, 40, tzinfo=UTC)
    assert (stats.order_count, stats.net_spend_fen, stats.last_order_at) == (0, 0, None)


def test_another_time_zone_buckets_differently(cast, send):
    cast.workspace.timezone = "UTC"
    cast.workspace.save()
    send(msg("track", userId="u-1", event="Viewed", timestamp="2026-03-01T23:30:00Z"))
    contact = contact_of(cast.workspace, "user_id", "u-1")
    assert daily_of(contact) == [(datetime.date(2026, 3, 1), "Viewed", 1)]


def test_processing_twice_does_not_double(cast, send):
    send(
        msg("track", userId="u-1", event="X", timestamp="2026-03-01T01:00:00Z"),
        msg("track", userId="u-1", event="X", timestamp="2026-03-01T02:00:00Z"),
    )
    # the same messages again: deduplicated by messageId, nothing more counted
    before = snapshot()
    assert process_pending.call(cast.workspace.pk) == 0
    assert process_pending_events(cast.workspace.pk) == 0
    assert snapshot() == before
    contact = contact_of(cast.workspace, "user_id", "u-1")
    assert daily_of(contact) == [(datetime.date(2026, 3, 1), "X", 2)]
    # a second batch adds to the same day's count, it does not replace or double it
    send(msg("track", userId="u-1", event="X", timestamp="2026-03-01T03:00:00Z"))
    assert daily_of(contact) == [(datetime.date(2026, 3, 1), "X", 3)]


def test_last_channel_of_the_latest_event(cast, send):
    send(
        msg(
            "track",
            userId="u-1",
            event="A",
            timestamp="2026-03-02T00:00:00Z",
            context={"channel": "mini_program", "library": {"name": "analytics-python"}},
        ),
        msg(
            "track",
            userId="u-1",
            event="B",
            timestamp="2026-03-01T00:00:00Z",  # older, sent later: not the latest
            context={"campaign": {"source": "douyin"}},
        ),
    )
    contact = contact_of(cast.workspace, "user_id", "u-1")
    assert contact.stats.last_channel == "mini_program"
    send(
        msg(
            "track",
            userId="u-1",
            event="C",
            timestamp="2026-03-03T00:00:00Z",
            context={"campaign": {"source": "douyin"}, "library": {"name": "x"}},
        )
    )
    contact.stats.refresh_from_db()
    assert contact.stats.last_channel == "douyin"


@pytest.mark.parametrize(
    ("context", "channel"),
    [
        ({"channel": "\t企业微信 \n", "campaign": {"source": "douyin"}}, "企业微信"),
        ({"channel": "  ", "campaign": {"source": " douyin"}}, "douyin"),  # blank: next one
        ({"channel": 7, "campaign": "x", "library": {"name": "analytics.js"}}, "analytics.js"),
        ({"channel": "门店" * 100}, "门店" * 60),  # at most 120 characters
        ({"library": {"name": ["not", "text"]}}, ""),
    ],
)
def test_last_channel_is_the_same_on_ingest_and_rebuild(cast, send, context, channel):
    """The batch folds the channel in SQL on PostgreSQL; rebuild reads it in Python."""
    send(msg("track", userId="u-ch", event="A", context=context))
    contact = contact_of(cast.workspace, "user_id", "u-ch")
    assert contact.stats.last_channel == channel
    before = snapshot()
    rebuild("--workspace", cast.workspace.slug)
    assert snapshot() == before


def test_api_orders_and_refunds_update_the_stats(cast, api, make_contact):
    contact = make_contact()
    client = api("operator")
    body = {"external_id": "A-1", "contact_id": contact.pk, "total": "100.50"}
    assert client.post("/api/v1/orders", body).status_code == 201
    assert client.post("/api/v1/orders", body).status_code == 200  # a retry: no change
    placed = datetime.datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    second = {
        "external_id": "A-2",
        "contact_id": contact.pk,
        "total": 20,
        "placed_at": placed.isoformat(),
    }
    assert client.post("/api/v1/orders", second).status_code == 201
    stats = ContactStats.objects.get(contact=contact)
    assert (stats.order_count, stats.net_spend_fen) == (2, 12050)
    refund = client.post("/api/v1/orders/A-1/refund", {"amount": "0.50", "refund_id": "r-1"})
    assert refund.status_code == 200, refund.content
    client.post("/api/v1/orders/A-1/refund", {"amount": "0.50", "refund_id": "r-1"})  # retry
    stats.refresh_from_db()
    assert (stats.order_count, stats.net_spend_fen) == (2, 12000)
    assert stats.last_event_at is None and stats.last_channel == ""
    before = snapshot()
    rebuild()
    assert snapshot() == before


def test_incremental_equals_rebuilt(cast, send, api, make_contact):
    ws = cast.workspace
    send(
        msg(userId="u-1", traits={"phone": "13800138000"}, timestamp="2026-03-01T09:00:00Z"),
        msg("page", anonymousId="a-1", name="Home", timestamp="2026-03-01T23:30:00Z"),
        msg("screen", anonymousId="a-2", name="Cart", timestamp="2026-03-02T01:00:00Z"),
        msg(
            "track",
            userId="u-1",
            event="Order Completed",
            properties={"order_id": "E-1", "total": "88.80"},
            timestamp="2026-03-02T10:00:00Z",
            context={"channel": "mini_program"},
        ),
        msg(
            "track",
            userId="u-1",
            event="Order Refunded",
            properties={"order_id": "E-1", "total": "8.80"},
            timestamp="2026-03-03T10:00:00Z",
        ),
        msg("track", anonymousId="a-2", event="Product Viewed", timestamp="2026-03-02T02:00:00Z"),
    )
    # the anonymous page viewer turns out to be u-1: merged by the resolver
    send(msg("alias", userId="u-1", previousId="a-1", timestamp="2026-03-04T00:00:00Z"))
    u1 = contact_of(ws, "user_id", "u-1")
    assert contact_of(ws, "anonymous_id", "a-1") == u1
    # an order and a refund through the API, for a contact from the console
    store = make_contact(name="门店客", phone="13900139000")
    client = api("operator")
    body = {"external_id": "S-1", "contact_id": store.pk, "total": "300"}
    assert client.post("/api/v1/orders", body).status_code == 201
    assert client.post("/api/v1/orders/S-1/refund", {"amount": "100"}).status_code == 200
    # a manual merge: the anonymous a-2 (events) into the store contact (orders)
    a2 = contact_of(ws, "anonymous_id", "a-2")
    contact_actions.contacts_merge(workspace=ws, actor=cast.owner.actor, survivor=store, other=a2)
    send(msg("track", anonymousId="a-2", event="Product Viewed", timestamp="2026-03-05T02:00:00Z"))
    # the outsider workspace has aggregates of its own
    outsider = make_contact(workspace=cast.outsider_workspace, name="他人")
    Order.objects.create(
        workspace=cast.outsider_workspace,
        contact=outsider,
        external_id="O-1",
        total_fen=5,
        placed_at=datetime.datetime(2026, 3, 1, tzinfo=UTC),
    )  # written without the action: only the rebuild knows it

    incremental = snapshot()
    stats = {s[1]: s for s in incremental[0]}
    assert stats[u1.pk][2:5] == (1, 8000, datetime.datetime(2026, 3, 2, 10, tzinfo=UTC))
    assert stats[store.pk][2:4] == (1, 20000)
    assert stats[store.pk][6] == datetime.datetime(2026, 3, 5, 2, tzinfo=UTC)
    assert a2.pk not in stats  # merged away: its rows cascaded
    assert not DailyEventCount.objects.filter(contact_id=a2.pk).exists()
    assert (datetime.date(2026, 3, 2), "page", 1) in daily_of(u1)  # 23:30 UTC -> next day
    assert daily_of(store) == [
        (datetime.date(2026, 3, 2), "Product Viewed", 1),
        (datetime.date(2026, 3, 2), "screen", 1),
        (datetime.date(2026, 3, 5), "Product Viewed", 1),
    ]

    # rebuilding our workspace changes nothing
    out = rebuild("--workspace", ws.slug)
    assert f"{ws.slug}: recomputed aggregates of" in out
    assert snapshot() == incremental
    # from nothing, in small batches, every workspace: our rows again, plus the outsider's
    ContactStats.objects.all().delete()
    DailyEventCount.objects.all().delete()
    rebuild("--batch", "1")
    stats, daily = snapshot()
    assert daily == incremental[1]
    assert [s for s in stats if s[0] == ws.pk] == incremental[0]
    assert [s[1:4] for s in stats if s[0] != ws.pk] == [(outsider.pk, 1, 5)]


def test_rebuild_an_unknown_workspace_is_an_error(cast):
    with pytest.raises(CommandError):
        rebuild("--workspace", "nope")

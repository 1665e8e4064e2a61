"""The product catalog from Segment e-commerce events: built by the resolver from events sent
through the collection API, latest attributes win whatever the arrival order, counters are
exact and never doubled, bad properties are skipped field by field; the read API."""

import datetime
import itertools
import logging

import pytest
from django.db import connection

from siyu.accounts.permissions import Role
from siyu.tracking import resolve
from siyu.tracking.actions import events_ingest
from siyu.tracking.models import Event, Order, Product, QueuedEvent, ResolvedEvent
from siyu.tracking.products import products_from_batch
from siyu.tracking.resolve import process_pending_events
from tests.helpers import error_of

UTC = datetime.UTC
_ids = itertools.count()

# what the catalog holds, without ids and bookkeeping times
FIELDS = (
    "product_id",
    "sku",
    "name",
    "category",
    "brand",
    "variant",
    "price_fen",
    "currency",
    "url",
    "image_url",
    "first_seen_at",
    "last_seen_at",
    "views",
    "adds",
)


def at(day: int, hour: int = 10) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00Z"


def dt(day: int, hour: int = 10) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, tzinfo=UTC)


def track(event: str, properties: dict, when: str = "2026-03-01T10:00:00Z", **fields) -> dict:
    return {
        "type": "track",
        "messageId": f"p-{next(_ids)}",
        "userId": "u-1",
        "event": event,
        "properties": properties,
        "timestamp": when,
        **fields,
    }


@pytest.fixture
def send(collector, django_capture_on_commit_callbacks):
    """send(msg, ...) posts one batch and runs what is enqueued on commit (processing)."""

    def post(*messages, client=None):
        with django_capture_on_commit_callbacks(execute=True):
            response = (client or collector).post("/v1/batch", {"batch": list(messages)})
        assert response.status_code == 200, response.content
        assert "rejected" not in response.json(), response.json()
        return response

    return post


def catalog(ws) -> dict[str, dict]:
    rows = Product.objects.filter(workspace=ws).order_by("product_id").values(*FIELDS)
    return {row["product_id"]: row for row in rows}


def one(ws, product_id: str) -> dict:
    return catalog(ws)[product_id]


LATTE = {
    "product_id": "p-1",
    "sku": "LATTE-M",
    "name": "拿铁",
    "category": "咖啡",
    "brand": "星巴克",
    "variant": "中杯",
    "price": "32.50",
    "currency": "cny",
    "url": "https://shop.example.cn/p/1",
    "image_url": "https://img.example.cn/p/1.jpg",
}


# --- building the catalog ---------------------------------------------------------------------


def test_a_product_viewed_event_creates_the_product(cast, send):
    send(track("Product Viewed", LATTE, at(1)))
    assert one(cast.workspace, "p-1") == {
        "product_id": "p-1",
        "sku": "LATTE-M",
        "name": "拿铁",
        "category": "咖啡",
        "brand": "星巴克",
        "variant": "中杯",
        "price_fen": 3250,
        "currency": "CNY",
        "url": "https://shop.example.cn/p/1",
        "image_url": "https://img.example.cn/p/1.jpg",
        "first_seen_at": dt(1),
        "last_seen_at": dt(1),
        "views": 1,
        "adds": 0,
    }
    assert Event.objects.get().status == "processed"


def test_counters_add_up_across_batches(cast, send):
    ws = cast.workspace
    send(
        track("Product Viewed", {"product_id": "p-1"}, at(1)),
        track("Product Viewed", {"product_id": "p-1"}, at(2)),
        track("Product Added", {"product_id": "p-1", "quantity": 2}, at(2, 11)),
        track("Product Clicked", {"product_id": "p-1"}, at(2, 12)),
        track("Product Viewed", {"product_id": "p-2"}, at(3)),
    )
    send(
        track("Product Viewed", {"product_id": "p-1"}, at(4)),
        track("Product Added", {"product_id": "p-1"}, at(4)),
        track("Product Removed", {"product_id": "p-1"}, at(5)),
        track("Product Added to Wishlist", {"product_id": "p-2"}, at(5)),
        track("Signed Up", {"product_id": "p-3"}, at(5)),  # not a product event
    )
    got = {
        k: (v["views"], v["adds"], v["first_seen_at"], v["last_seen_at"])
        for k, v in catalog(ws).items()
    }
    assert got == {"p-1": (3, 2, dt(1), dt(5)), "p-2": (1, 0, dt(3), dt(5))}


def test_every_segment_product_event_names_its_products(cast, send):
    ws = cast.workspace
    single = [
        "Product Viewed",
        "Product Clicked",
        "Product Added",
        "Product Removed",
        "Product Added to Wishlist",
        "Product Removed from Wishlist",
        "Product Shared",
        "Product Reviewed",
    ]
    lists = [
        "Product List Viewed",
        "Product List Filtered",
        "Checkout Started",
        "Cart Viewed",
    ]
    send(
        *[track(name, {"product_id": f"s-{n}"}) for n, name in enumerate(single)],
        *[
            track(name, {"category": "列表", "products": [{"product_id": f"l-{n}"}]})
            for n, name in enumerate(lists)
        ],
    )
    assert sorted(catalog(ws)) == sorted(
        [f"s-{n}" for n in range(len(single))] + [f"l-{n}" for n in range(len(lists))]
    )
    # a list's own category is not its products'
    assert {p["category"] for k, p in catalog(ws).items() if k.startswith("l-")} == {""}


def test_order_completed_products_join_the_catalog(cast, send):
    ws = cast.workspace
    send(
        track(
            "Order Completed",
            {
                "order_id": "A-1",
                "currency": "USD",
                "products": [
                    {"product_id": "p-1", "sku": "LATTE", "name": "拿铁", "price": 19.9},
                    {"sku": "MUG", "name": "杯子", "category": "周边", "price": "180"},
                    {"name": "无编号", "price": 1},  # neither product_id nor sku: no entry
                ],
            },
            at(2),
        )
    )
    got = catalog(ws)
    assert sorted(got) == ["MUG", "p-1"]
    assert (got["p-1"]["name"], got["p-1"]["price_fen"], got["p-1"]["currency"]) == (
        "拿铁",
        1990,
        "USD",
    )
    assert (got["MUG"]["sku"], got["MUG"]["category"], got["MUG"]["price_fen"]) == (
        "MUG",
        "周边",
        18000,
    )
    assert (got["MUG"]["views"], got["MUG"]["adds"]) == (0, 0)
    # the order itself is recorded as before
    assert Event.objects.get().note == ""
    assert Order.objects.get(workspace=ws).external_id == "A-1"


def test_the_price_takes_the_workspace_currency_when_none_is_sent(cast, send):
    send(track("Product Viewed", {"product_id": "p-1", "price": 0}))
    assert (one(cast.workspace, "p-1")["price_fen"], one(cast.workspace, "p-1")["currency"]) == (
        0,
        "CNY",
    )


# --- latest attributes win ---------------------------------------------------------------------

OLD = {"product_id": "p-1", "name": "旧名", "category": "咖啡", "price": "30", "brand": "旧牌"}
NEW = {"product_id": "p-1", "name": "新名", "price": "35.5", "brand": "", "variant": None}


def _expected():
    return {
        "name": "新名",  # the newer event's
        "price_fen": 3550,
        "category": "咖啡",  # the newer event had none: the older fills the blank
        "brand": "旧牌",  # an empty value never clears
        "first_seen_at": dt(1),
        "last_seen_at": dt(3),
        "views": 2,
    }


def _view(ws):
    product = one(ws, "p-1")
    return {key: product[key] for key in _expected()}


@pytest.mark.parametrize("order", ["old_first", "new_first"])
def test_latest_attributes_win_in_separate_batches(cast, send, order):
    old, new = track("Product Viewed", OLD, at(1)), track("Product Viewed", NEW, at(3))
    for message in [old, new] if order == "old_first" else [new, old]:
        send(message)
    assert _view(cast.workspace) == _expected()


@pytest.mark.parametrize("order", ["old_first", "new_first"])
def test_latest_attributes_win_within_one_batch(cast, send, order):
    old, new = track("Product Viewed", OLD, at(1)), track("Product Viewed", NEW, at(3))
    send(*([old, new] if order == "old_first" else [new, old]))
    assert _view(cast.workspace) == _expected()


def test_a_late_event_never_overwrites_newer_attributes(cast, send):
    send(track("Product Viewed", {"product_id": "p-1", "name": "新名", "price": 10}, at(5)))
    older = {"product_id": "p-1", "name": "旧名", "price": 9, "currency": "USD"}
    oldest = {"order_id": "o-1", "products": [{"product_id": "p-1", "name": "更旧"}]}
    send(track("Product Added", older, at(2)), track("Order Completed", oldest, at(1)))
    product = one(cast.workspace, "p-1")
    assert (product["name"], product["price_fen"], product["currency"]) == ("新名", 1000, "CNY")
    assert (product["first_seen_at"], product["last_seen_at"]) == (dt(1), dt(5))
    assert (product["views"], product["adds"]) == (1, 1)


def test_equal_timestamps_the_later_received_wins(cast, send):
    send(track("Product Viewed", {"product_id": "p-1", "name": "先"}, at(1)))
    send(track("Product Viewed", {"product_id": "p-1", "name": "后"}, at(1)))
    assert one(cast.workspace, "p-1")["name"] == "后"


# --- bad properties ----------------------------------------------------------------------------


def test_bad_properties_are_skipped_field_by_field(cast, send):
    ws = cast.workspace
    send(
        track("Product Viewed", {"product_id": "p-1", "name": "拿铁", "price": "1.999"}, at(1)),
        track("Product Viewed", {"product_id": "p-2", "name": "x" * 256, "category": "茶"}, at(1)),
        track("Product Viewed", {"product_id": {"id": 3}, "sku": "S-3", "name": "杯"}, at(1)),
        track("Product Viewed", {"product_id": ["p-4"]}, at(1)),  # no usable id at all
        track("Product Viewed", {"product_id": True, "name": "布尔"}, at(1)),
        track("Product Viewed", {"product_id": 505, "name": ["a"], "price": -1, "url": 5.5}, at(1)),
        track("Product Viewed", {"product_id": "p-6", "price": 9, "currency": "RMB¥"}, at(1)),
        track("Product List Viewed", {"products": "p-7"}, at(1)),
        track("Cart Viewed", {"products": [None, "p-8", {"product_id": "p-8", "name": "八"}]}),
    )
    got = catalog(ws)
    assert sorted(got) == ["505", "S-3", "p-1", "p-2", "p-6", "p-8"]
    assert (got["p-1"]["name"], got["p-1"]["price_fen"], got["p-1"]["currency"]) == (
        "拿铁",
        None,
        "",
    )
    assert (got["p-2"]["name"], got["p-2"]["category"]) == ("", "茶")
    assert (got["S-3"]["sku"], got["S-3"]["name"]) == ("S-3", "杯")
    assert (got["505"]["name"], got["505"]["price_fen"], got["505"]["url"]) == ("", None, "")
    assert (got["p-6"]["price_fen"], got["p-6"]["currency"]) == (900, "CNY")
    assert got["p-8"]["name"] == "八"
    assert all(v["views"] == 1 for k, v in got.items() if k != "p-8")
    # every event was processed, nothing failed
    assert not QueuedEvent.objects.exists() and ResolvedEvent.objects.exists()


def test_an_invalid_later_value_keeps_the_valid_earlier_one(cast, send):
    send(track("Product Viewed", {"product_id": "p-1", "name": "拿铁", "price": 20}, at(1)))
    send(track("Product Viewed", {"product_id": "p-1", "name": "y" * 300, "price": "0.001"}, at(2)))
    product = one(cast.workspace, "p-1")
    assert (product["name"], product["price_fen"], product["last_seen_at"]) == ("拿铁", 2000, dt(2))


# --- exactly once ------------------------------------------------------------------------------


def test_a_retried_request_changes_nothing(cast, send):
    messages = [
        track("Product Viewed", LATTE, at(1)),
        track("Product Added", {"product_id": "p-1", "price": 40}, at(2)),
    ]
    send(*messages)
    before = list(Product.objects.order_by("pk").values())
    send(*messages)  # same messageIds: deduplicated, nothing new to process
    assert list(Product.objects.order_by("pk").values()) == before
    assert before[0]["views"] == 1 and before[0]["adds"] == 1
    # and draining again finds nothing
    assert process_pending_events(cast.workspace.pk) == 0
    assert list(Product.objects.order_by("pk").values()) == before


def test_only_processed_events_of_the_batch_count(cast, django_capture_on_commit_callbacks):
    ws = cast.workspace
    with django_capture_on_commit_callbacks(execute=False):  # stored, not processed
        events_ingest(
            workspace=ws,
            events=[
                {
                    "message_id": "pending-1",
                    "type": "track",
                    "user_id": "u-1",
                    "anonymous_id": "",
                    "event": "Product Viewed",
                    "properties": {"product_id": "p-1"},
                    "traits": {},
                    "context": {},
                    "timestamp": dt(1),
                    "received_at": dt(1),
                }
            ],
        )
    event = Event.objects.get()
    products_from_batch(ws, [event.pk])
    assert not Product.objects.exists()  # still pending: not counted
    process_pending_events(ws.pk)
    products_from_batch(ws, [])
    assert one(ws, "p-1")["views"] == 1


def test_events_of_known_people_count_too(cast, send, monkeypatch):
    """Track events of a contact the pool already holds (resolved by the set-based pass on
    PostgreSQL) are folded in like the others."""
    send({"type": "identify", "messageId": "id-1", "userId": "u-1", "anonymousId": "a-1"})
    known: list[int] = []
    real = resolve.resolve_known

    def resolve_known(ws, ids):
        fetch = real(ws, ids)

        def result():
            found = fetch()
            known.append(found.resolved)
            return found

        return result

    monkeypatch.setattr(resolve, "resolve_known", resolve_known)
    send(
        track("Product Viewed", {"product_id": "p-1", "name": "拿铁"}, at(1), anonymousId="a-1"),
        track("Product Added", {"product_id": "p-1"}, at(2), anonymousId="a-1"),
    )
    if connection.vendor == "postgresql":
        assert known[0] == 2  # both went through the set-based pass
    product = one(cast.workspace, "p-1")
    assert (product["name"], product["views"], product["adds"]) == ("拿铁", 1, 1)
    assert not QueuedEvent.objects.exists() and ResolvedEvent.objects.exists()


def test_a_catalog_failure_never_stops_processing(cast, send, monkeypatch, caplog):
    # a statement the database refuses: rolled back alone, the batch goes on
    monkeypatch.setattr("siyu.tracking.products._assignments", lambda table: "no_such = 1")
    with caplog.at_level(logging.ERROR, logger="siyu.tracking.products"):
        send(track("Product Viewed", {"product_id": "p-1"}, at(1)))
    assert Event.objects.get().status == "processed"
    assert Event.objects.get().contact_id is not None
    assert "not recorded" in caplog.text
    assert not Product.objects.exists()


# --- workspaces --------------------------------------------------------------------------------


def test_each_workspace_has_its_own_catalog(cast, send, outsider_collector):
    send(track("Product Viewed", {"product_id": "p-1", "name": "我们的"}, at(1)))
    send(
        track("Product Viewed", {"product_id": "p-1", "name": "他们的"}, at(2)),
        track("Product Viewed", {"product_id": "p-1", "name": "他们的"}, at(3)),
        client=outsider_collector,
    )
    ours, theirs = one(cast.workspace, "p-1"), one(cast.outsider_workspace, "p-1")
    assert (ours["name"], ours["views"]) == ("我们的", 1)
    assert (theirs["name"], theirs["views"]) == ("他们的", 2)


# --- the API -----------------------------------------------------------------------------------


def _seed(send):
    rows = [
        ("Product Viewed", "p-1", "拿铁", "咖啡"),
        ("Product Viewed", "p-2", "拿铁冰", "咖啡"),
        ("Product Viewed", "p-3", "抹茶", "茶"),
        ("Product Added", "p-4", "马克杯", "周边"),
        ("Product Viewed", "p-5", "美式", "咖啡"),
    ]
    send(
        *[
            track(event, {"product_id": pid, "name": name, "category": category}, at(day))
            for day, (event, pid, name, category) in enumerate(rows, 1)
        ],
        track("Product Clicked", {"product_id": "p-1", "price": "32"}, at(1, 9)),
    )


def _all(client, **params):
    seen, cursor = [], ""
    while True:
        response = client.get("/api/v1/products", cursor=cursor, **params)
        assert response.status_code == 200, response.content
        page = response.json()
        seen += [p["product_id"] for p in page["items"]]
        if not page["next"]:
            return seen
        cursor = page["next"]


def test_the_list_is_newest_seen_first_in_pages(cast, api, send):
    _seed(send)
    client = api("analyst")
    assert _all(client, limit=2) == ["p-5", "p-4", "p-3", "p-2", "p-1"]
    first = client.get("/api/v1/products", limit=1).json()["items"][0]
    assert first["product_id"] == "p-5" and first["views"] == 1 and first["price"] is None
    item = next(
        p for p in client.get("/api/v1/products").json()["items"] if p["product_id"] == "p-1"
    )
    assert (item["price"], item["price_fen"], item["currency"]) == ("32.00", 3200, "CNY")


def test_the_list_filters_by_name_prefix_id_and_category(cast, api, send):
    _seed(send)
    client = api("operator")
    assert _all(client, q="拿铁") == ["p-2", "p-1"]
    assert _all(client, q="p-3") == ["p-3"]  # an exact product id
    assert _all(client, q="p-") == []  # ids match exactly, not by prefix
    assert _all(client, q="铁") == []  # names by prefix only
    assert _all(client, category="咖啡", limit=1) == ["p-5", "p-2", "p-1"]
    assert _all(client, q="拿铁冰", category="咖啡") == ["p-2"]
    assert _all(client, category="没有") == []


def test_one_product_by_its_id(cast, api, send, outsider_collector):
    send(track("Product Viewed", {"product_id": "A/1 拿铁", "name": "拿铁"}, at(1)))
    send(track("Product Viewed", {"product_id": "theirs"}, at(1)), client=outsider_collector)
    client = api("agent")
    response = client.get("/api/v1/products/A%2F1%20拿铁")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "拿铁"
    missing = client.get("/api/v1/products/nope")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    # another workspace's product is not found, whoever asks
    assert client.get("/api/v1/products/theirs").status_code == 404
    assert api("outsider").get("/api/v1/products/A%2F1%20拿铁").status_code == 404
    assert api("outsider").get("/api/v1/products").json()["items"][0]["product_id"] == "theirs"


@pytest.mark.parametrize("role", [r for r in Role.values if r != Role.OWNER])  # no owner keys
def test_every_role_that_reads_events_reads_products(cast, api, send, role):
    send(track("Product Viewed", {"product_id": "p-1"}, at(1)))
    assert api(role).get("/api/v1/products").status_code == 200
    assert api(role).get("/api/v1/products/p-1").status_code == 200


def test_the_api_refuses_bad_input_with_the_error_shape(cast, api):
    assert error_of(api(None).get("/api/v1/products"))["code"] == "unauthorized"
    bad = api("admin").get("/api/v1/products", cursor="nope")
    assert bad.status_code == 422
    assert error_of(bad)["details"]["field"] == "cursor"
    assert api("admin").get("/api/v1/products").json() == {"items": [], "next": None}

"""Orders: the server API (idempotent by the brand's order id, exact money), refunds, the
read API, orders from Segment e-commerce events, and merges moving orders."""

import itertools

import pytest

from siyu.contacts import actions as contact_actions
from siyu.contacts.models import TimelineEntry
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.core.models import AuditLog
from siyu.tracking.models import Event, Order, OrderItem, OrderRefund
from siyu.tracking.orders import parse_money

_ids = itertools.count()


def order_body(contact_id, external_id="A-1", **extra):
    return {
        "external_id": external_id,
        "contact_id": contact_id,
        "total": "219.80",
        "discount": 10,
        "shipping": "12",
        "products": [
            {"product_id": "p-1", "sku": "LATTE", "name": "拿铁", "price": 19.9, "quantity": 2},
            {"sku": "MUG", "name": "杯子", "category": "周边", "price": "180"},
        ],
        **extra,
    }


def counts(ws):
    return (
        Order.objects.filter(workspace=ws).count(),
        OrderItem.objects.filter(workspace=ws).count(),
        OrderRefund.objects.filter(workspace=ws).count(),
        AuditLog.objects.filter(workspace=ws, action__startswith="order.").count(),
        TimelineEntry.objects.filter(workspace=ws, kind__startswith="order_").count(),
    )


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fen"),
    [("199", 19900), ("199.9", 19990), ("199.90", 19990), (199.9, 19990), (199, 19900),
     (0.3, 30), ("0.10", 10), (" 5.5 ", 550), ("12.300", 1230), (0, 0)],
)  # fmt: skip
def test_money_is_exact_fen(value, fen):
    assert parse_money(value, "total") == fen


@pytest.mark.parametrize(
    "value", [0.1 + 0.2, "1.999", "-1", -0.5, "abc", "", None, True, "1e3", "NaN", [1]]
)
def test_bad_money_names_the_field(value):
    with pytest.raises(ValidationError) as info:
        parse_money(value, "products[1].price")
    assert info.value.field == "products[1].price"


# --- the server API ----------------------------------------------------------------------------


def test_create_then_same_again_then_different(cast, api, make_contact):
    contact = make_contact()
    client = api("operator")
    first = client.post("/api/v1/orders", order_body(contact.pk))
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["total_fen"], body["discount_fen"], body["shipping_fen"]) == (21980, 1000, 1200)
    assert body["total"] == "219.80" and body["currency"] == "CNY"
    assert body["status"] == "completed" and body["source"] == "api"
    assert [
        (i["sku"], i["price_fen"], i["quantity"], i["line_total_fen"]) for i in body["items"]
    ] == [
        ("LATTE", 1990, 2, 3980),
        ("MUG", 18000, 1, 18000),
    ]
    entry = TimelineEntry.objects.get(contact=contact, kind="order_placed")
    assert entry.data["total"] == "219.80" and entry.data["order_id"] == "A-1"
    before = counts(cast.workspace)
    assert before == (1, 2, 0, 1, 1)

    again = client.post("/api/v1/orders", order_body(contact.pk, total=219.8))
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert counts(cast.workspace) == before

    changed = client.post("/api/v1/orders", order_body(contact.pk, total="219.81"))
    assert changed.status_code == 409
    assert changed.json()["details"]["field"] == "external_id"
    other_items = order_body(contact.pk)
    other_items["products"][1]["quantity"] = 2
    assert client.post("/api/v1/orders", other_items).status_code == 409
    assert counts(cast.workspace) == before
    assert Order.objects.get().total_fen == 21980


def test_the_contact_by_identity_and_bad_input(cast, api, make_contact):
    contact = make_contact(phone="13800138000", user_id="u-9")
    client = api("admin")
    by_user = client.post("/api/v1/orders", {**order_body(None, "B-1"), "user_id": "u-9"})
    assert by_user.status_code == 201 and by_user.json()["contact_id"] == contact.pk
    by_phone = client.post("/api/v1/orders", {**order_body(None, "B-2"), "phone": "138 0013 8000"})
    assert by_phone.status_code == 201 and by_phone.json()["contact_id"] == contact.pk
    before = counts(cast.workspace)
    nobody = client.post("/api/v1/orders", {**order_body(None, "B-3"), "phone": "13900000000"})
    assert (nobody.status_code, nobody.json()["details"]["field"]) == (422, "phone")
    none = client.post("/api/v1/orders", order_body(None, "B-4"))
    assert (none.status_code, none.json()["details"]["field"]) == (422, "contact_id")
    for field, body in [
        ("products[1].price", order_body(contact.pk, "B-5", products=[
            {"sku": "a", "price": 1}, {"sku": "b", "price": 0.1 + 0.2}])),
        ("products[0].price", order_body(contact.pk, "B-6", products=[{"sku": "a"}])),
        ("total", order_body(contact.pk, "B-7", total="-5")),
        ("discount", order_body(contact.pk, "B-8", discount="1.234")),
        ("currency", order_body(contact.pk, "B-9", currency="yuan")),
    ]:  # fmt: skip
        response = client.post("/api/v1/orders", body)
        assert response.status_code == 422, (field, response.content)
        assert response.json()["details"]["field"] == field
    assert counts(cast.workspace) == before


def test_another_workspaces_contact_is_404_and_no_permission_is_403(cast, api, make_contact):
    theirs = make_contact(workspace=cast.outsider_workspace)
    assert api("admin").post("/api/v1/orders", order_body(theirs.pk)).status_code == 404
    mine = make_contact()
    assert api("analyst").post("/api/v1/orders", order_body(mine.pk)).status_code == 403
    assert Order.objects.count() == 0


# --- refunds -----------------------------------------------------------------------------------


def test_refunds_partial_full_over_and_retried(cast, api, make_contact):
    contact = make_contact()
    client = api("operator")
    client.post("/api/v1/orders", order_body(contact.pk, total="100"))
    partial = client.post("/api/v1/orders/A-1/refund", {"amount": "30.10", "refund_id": "r-1"})
    assert partial.status_code == 200, partial.content
    assert (partial.json()["refunded_fen"], partial.json()["status"]) == (
        3010,
        "partially_refunded",
    )
    retried = client.post("/api/v1/orders/A-1/refund", {"amount": 30.1, "refund_id": "r-1"})
    assert retried.status_code == 200 and retried.json()["refunded_fen"] == 3010
    assert (
        client.post("/api/v1/orders/A-1/refund", {"amount": "5", "refund_id": "r-1"}).status_code
        == 409
    )
    before = counts(cast.workspace)
    over = client.post("/api/v1/orders/A-1/refund", {"amount": "69.91"})
    assert (over.status_code, over.json()["details"]["field"]) == (422, "amount")
    bad = client.post("/api/v1/orders/A-1/refund", {"amount": "0.001"})
    assert (bad.status_code, bad.json()["details"]["field"]) == (422, "amount")
    assert counts(cast.workspace) == before
    full = client.post("/api/v1/orders/A-1/refund", {"refund_id": "r-2"})
    assert (full.json()["refunded_fen"], full.json()["status"]) == (10000, "refunded")
    assert client.post("/api/v1/orders/A-1/refund", {"amount": "1"}).status_code == 422
    assert client.post("/api/v1/orders/NOPE/refund", {"amount": "1"}).status_code == 404
    assert api("outsider").post("/api/v1/orders/A-1/refund", {"amount": 1}).status_code == 404
    rows = TimelineEntry.objects.filter(contact=contact, kind="order_refunded").order_by("id")
    assert [r.data["amount"] for r in rows] == ["30.10", "69.90"]
    assert OrderRefund.objects.count() == 2


# --- the read API ------------------------------------------------------------------------------


def test_a_contacts_orders_newest_first_in_pages(cast, api, make_contact, agent_api):
    contact = make_contact()
    client = api("admin")
    for n in range(5):
        body = order_body(contact.pk, f"C-{n}", placed_at=f"2026-03-0{n + 1}T10:00:00Z")
        assert client.post("/api/v1/orders", body).status_code == 201
    seen, cursor = [], ""
    while True:
        page = api("analyst").get(f"/api/v1/contacts/{contact.pk}/orders", limit=2, cursor=cursor)
        assert page.status_code == 200
        seen += page.json()["items"]
        cursor = page.json()["next"]
        if not cursor:
            break
    assert [o["external_id"] for o in seen] == ["C-4", "C-3", "C-2", "C-1", "C-0"]
    assert len(seen[0]["items"]) == 2
    assert agent_api.get(f"/api/v1/contacts/{contact.pk}/orders").status_code == 404
    assert api("outsider").get(f"/api/v1/contacts/{contact.pk}/orders").status_code == 404
    # an agent's key neither refunds nor creates for a contact that is not theirs
    assert agent_api.post("/api/v1/orders/C-1/refund", {"amount": 1}).status_code == 404
    assert agent_api.post("/api/v1/orders", order_body(contact.pk, "C-9")).status_code == 404
    own = make_contact(owner=cast.agent)
    assert agent_api.post("/api/v1/orders", order_body(own.pk, "C-10")).status_code == 201
    assert agent_api.get(f"/api/v1/contacts/{own.pk}/orders").json()["items"][0]["external_id"] == (
        "C-10"
    )
    bad = client.get(f"/api/v1/contacts/{contact.pk}/orders", cursor="nope")
    assert (bad.status_code, bad.json()["details"]["field"]) == (422, "cursor")


# --- from events -------------------------------------------------------------------------------


@pytest.fixture
def send(collector, django_capture_on_commit_callbacks):
    def post(*messages):
        with django_capture_on_commit_callbacks(execute=True):
            response = collector.post("/v1/batch", {"batch": list(messages)})
        assert response.status_code == 200, response.content
        return response

    return post


def track(event, user_id="u-1", anonymousId=None, **properties):  # noqa: N803
    message = {
        "type": "track",
        "messageId": f"om-{next(_ids)}",
        "event": event,
        "properties": properties,
        "timestamp": "2026-03-01T10:00:00Z",
    }
    if user_id:
        message["userId"] = user_id
    if anonymousId:
        message["anonymousId"] = anonymousId
    return message


COMPLETED = {
    "order_id": "E-1",
    "total": 27.5,
    "revenue": 25,
    "shipping": 3,
    "tax": 0,
    "discount": "0.5",
    "currency": "cny",
    "products": [
        {"product_id": "p1", "sku": "S1", "name": "美式", "category": "咖啡", "price": 12.5,
         "quantity": 2},
    ],
}  # fmt: skip


def test_order_completed_event_makes_an_order_and_a_duplicate_is_a_noop(cast, send):
    send(track("Order Completed", **COMPLETED))
    order = Order.objects.get(workspace=cast.workspace)
    event = Event.objects.get()
    assert (event.status, event.note) == ("processed", "")
    assert order.contact_id == event.contact_id and order.contact_id is not None
    assert (order.total_fen, order.discount_fen, order.shipping_fen, order.currency) == (
        2750, 50, 300, "CNY"
    )  # fmt: skip
    assert (order.source, order.message_id) == ("event", event.message_id)
    assert order.placed_at == event.timestamp
    item = order.items.get()
    assert (item.sku, item.price_fen, item.quantity, item.line_total_fen) == ("S1", 1250, 2, 2500)
    before = counts(cast.workspace)
    send(track("Order Completed", **COMPLETED))  # the same order, another message
    send(track("Order Completed", **{**COMPLETED, "total": 99}))  # changed: not applied
    assert counts(cast.workspace) == before
    last = Event.objects.order_by("-id").first()
    assert last.status == "processed" and "already exists" in last.note
    assert Order.objects.get().total_fen == 2750


def test_order_refunded_events(cast, send):
    send(track("Order Completed", **COMPLETED))
    send(track("Order Refunded", order_id="E-1", total="7.5"))
    order = Order.objects.get()
    assert (order.refunded_fen, order.status) == (750, "partially_refunded")
    send(track("Order Refunded", order_id="E-1"))  # the rest
    order.refresh_from_db()
    assert (order.refunded_fen, order.status) == (2750, "refunded")
    send(track("Order Refunded", order_id="E-1", total=1))  # nothing left
    last = Event.objects.order_by("-id").first()
    assert last.status == "processed" and "fully refunded" in last.note
    assert OrderRefund.objects.count() == 2


def test_a_malformed_order_event_is_recorded_and_processing_continues(cast, send):
    bad_price = {**COMPLETED, "order_id": "E-2", "products": [{"sku": "x", "price": "1.234"}]}
    send(
        track("Order Completed", **bad_price),
        track("Order Completed", total=5),  # no order_id
        track("Order Refunded", order_id="NOPE"),
        track("Order Completed", **{**COMPLETED, "order_id": "E-3"}),
    )
    events = list(Event.objects.order_by("id"))
    assert all(e.status == "processed" and e.contact_id for e in events)
    assert "products[0].price" in events[0].note
    assert "order_id" in events[1].note
    assert "NOPE" in events[2].note
    assert events[3].note == ""
    assert list(Order.objects.values_list("external_id", flat=True)) == ["E-3"]
    assert OrderItem.objects.count() == 1  # nothing of E-2 left behind


def test_merging_contacts_moves_their_orders(cast, api, make_contact):
    survivor, other = make_contact(name="甲"), make_contact(name="乙")
    client = api("admin")
    client.post("/api/v1/orders", order_body(other.pk, "M-1"))
    client.post("/api/v1/orders", order_body(survivor.pk, "M-2"))
    contact_actions.contacts_merge(
        workspace=cast.workspace, actor=Actor.system("test"), survivor=survivor, other=other
    )
    assert set(Order.objects.values_list("contact_id", flat=True)) == {survivor.pk}
    page = client.get(f"/api/v1/contacts/{survivor.pk}/orders").json()
    assert sorted(o["external_id"] for o in page["items"]) == ["M-1", "M-2"]


def test_an_event_merge_moves_orders_too(cast, send):
    send({"type": "identify", "messageId": "b", "anonymousId": "anon-2",
          "traits": {"phone": "13700000001"}})  # fmt: skip
    send(track("Order Completed", user_id=None, anonymousId="anon-1", **COMPLETED))
    buyer = Order.objects.get().contact_id
    survivor = Event.objects.get(message_id="b").contact_id
    assert buyer != survivor
    send({"type": "identify", "messageId": "join", "anonymousId": "anon-1",
          "traits": {"phone": "13700000001"}})  # fmt: skip
    assert Order.objects.get().contact_id == survivor


def test_order_rows_read_well_on_the_timeline(db):
    from siyu.contacts.models import TimelineEntry
    from siyu.contacts.timeline import describe

    placed = TimelineEntry(
        kind="order_placed", data={"order_id": "A-1", "total": "199.90", "currency": "CNY"}
    )
    refunded = TimelineEntry(
        kind="order_refunded",
        data={
            "order_id": "A-1",
            "amount": "20.00",
            "refunded": "20.00",
            "total": "199.90",
            "currency": "CNY",
        },
    )
    conflict = TimelineEntry(
        kind="identity_conflict",
        data={"other_id": 7, "identities": [{"kind": "phone", "value": "138****5678"}]},
    )
    assert describe(placed) == "下单 A-1：199.90 CNY"
    assert describe(refunded) == "订单 A-1 退款：20.00 CNY"
    assert describe(conflict) == "与客户 #7 身份冲突（未合并）：手机号 138****5678"

"""The contact profile's lazily loaded cards: orders (money from integer fen, totals summed in
SQL, shown in the workspace time zone) and activity (events: keys only, never clear PII),
scoped like the profile itself."""

import datetime

from django.utils import timezone

from siyu.core.audit import Actor
from siyu.tracking.actions import events_ingest
from siyu.tracking.models import ResolvedEvent
from siyu.tracking.orders import order_create, order_refund, parse_order
from tests.helpers import pending_event, processed_event


def url(contact_id: int, card: str) -> str:
    return f"/w/brand/contacts/{contact_id}/{card}/"


def add_order(cast, contact, external_id, total, products=(), placed_at=None):
    data = parse_order(
        {
            "external_id": external_id,
            "total": total,
            "placed_at": placed_at or timezone.now(),
            "products": list(products),
        },
        cast.workspace,
    )
    order, created = order_create(
        workspace=cast.workspace, actor=Actor.system("test"), contact=contact, data=data
    )
    assert created
    return order


def ingest(cast, capture, user_id="u-1", phone="13755556666"):
    base = timezone.now() - datetime.timedelta(hours=1)
    rows = [
        {
            "message_id": f"{user_id}-identify",
            "type": "identify",
            "user_id": user_id,
            "anonymous_id": "",
            "event": "",
            "properties": {},
            "traits": {"phone": phone, "name": "王小明"},
            "context": {},
            "timestamp": base,
            "received_at": timezone.now(),
        },
        {
            "message_id": f"{user_id}-track",
            "type": "track",
            "user_id": user_id,
            "anonymous_id": "",
            "event": "Product Viewed",
            "properties": {"sku": "sku-1", "price": 12.5},
            "traits": {},
            "context": {},
            "timestamp": base + datetime.timedelta(minutes=5),
            "received_at": timezone.now(),
        },
    ]
    with capture(execute=True):
        events_ingest(workspace=cast.workspace, events=rows)
    contact_id = ResolvedEvent.objects.get(event__message_id=f"{user_id}-identify").contact_id
    assert contact_id is not None
    return contact_id


def test_profile_page_loads_both_cards_lazily(cast, console, make_contact):
    contact = make_contact("王小明")
    html = console("owner").get(f"/w/brand/contacts/{contact.pk}/").content.decode()
    assert f'hx-get="/w/brand/contacts/{contact.pk}/orders/"' in html
    assert f'hx-get="/w/brand/contacts/{contact.pk}/events/"' in html
    assert html.count('hx-trigger="load"') >= 2


def test_owner_sees_orders_with_exact_money_and_totals(cast, console, make_contact):
    contact = make_contact("王小明")
    other = make_contact("李雷")
    placed = datetime.datetime(2024, 5, 1, 16, 30, tzinfo=datetime.UTC)  # 00:30 in Shanghai
    add_order(
        cast,
        contact,
        "A-1",
        "0.10",
        [{"name": "拿铁", "price": "0.10", "quantity": 1}],
        placed_at=placed,
    )
    add_order(
        cast,
        contact,
        "A-2",
        "0.20",
        [
            {"name": "美式", "price": "0.05", "quantity": 2},
            {"name": "可颂", "price": "0.10", "quantity": 1},
        ],
        placed_at=placed + datetime.timedelta(days=1),
    )
    add_order(cast, other, "B-1", "999")  # another contact's order is not counted
    page = console("owner").get(url(contact.pk, "orders"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "共 2 单，净消费 ¥0.30" in html  # 0.10 + 0.20, summed as integer fen
    assert "A-1" in html and "A-2" in html and "B-1" not in html
    assert "¥0.10" in html and "¥0.20" in html
    assert "2024-05-02 00:30" in html  # the workspace's time zone
    assert "已完成" in html
    assert "3 件商品" in html and "美式、可颂" in html
    assert html.index("A-2") < html.index("A-1")  # newest first


def test_refunds_shown_and_netted(cast, console, make_contact):
    contact = make_contact("王小明")
    order = add_order(cast, contact, "R-1", "199.90")
    add_order(cast, contact, "R-2", "50")
    order_refund(workspace=cast.workspace, actor=Actor.system("test"), order=order, amount_fen=9990)
    html = console("owner").get(url(contact.pk, "orders")).content.decode()
    assert "¥199.90" in html and "已退款 ¥99.90" in html and "部分退款" in html
    assert "共 2 单，净消费 ¥150.00" in html


def test_orders_empty_state(cast, console, make_contact):
    contact = make_contact("王小明")
    html = console("owner").get(url(contact.pk, "orders")).content.decode()
    assert "还没有订单" in html and "净消费" not in html


def test_owner_sees_events_keys_never_clear_phone(
    cast, console, django_capture_on_commit_callbacks
):
    contact_id = ingest(cast, django_capture_on_commit_callbacks)
    page = console("owner").get(url(contact_id, "events"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Product Viewed" in html and "行为" in html and "识别" in html
    assert "sku" in html and "price" in html and "phone" in html
    assert "13755556666" not in html and "+8613755556666" not in html
    assert "sku-1" not in html  # values are not shown, only keys
    assert html.index("Product Viewed") < html.index("识别")  # newest first


def test_events_empty_state_points_to_data_sources(cast, console, make_contact):
    contact = make_contact("王小明")
    html = console("owner").get(url(contact.pk, "events")).content.decode()
    assert "还没有行为记录" in html and 'href="/w/brand/data-sources/"' in html


def test_agent_and_outsider_get_404_for_contacts_they_may_not_see(
    cast, console, make_contact, django_capture_on_commit_callbacks
):
    mine = make_contact("自己的", owner=cast.agent)
    theirs = make_contact("别人的", owner=cast.operator)
    add_order(cast, theirs, "T-1", "10")
    events_of = ingest(cast, django_capture_on_commit_callbacks)
    agent = console("agent")
    for card in ("orders", "events"):
        assert agent.get(url(theirs.pk, card)).status_code == 404
        assert agent.get(url(events_of, card)).status_code == 404
        assert agent.get(url(mine.pk, card)).status_code == 200
        assert console("outsider").get(url(theirs.pk, card)).status_code == 404
        assert console("outsider").get(f"/w/other/contacts/{theirs.pk}/{card}/").status_code == 404


def test_events_card_lists_only_the_contacts_processed_events_newest_first(
    cast, console, make_contact
):
    contact = make_contact("王小明")
    other = make_contact("李雷")
    base = datetime.datetime(2025, 3, 1, 8, 0, tzinfo=datetime.UTC)

    def fields(name: str, minutes: int) -> dict:
        at = base + datetime.timedelta(minutes=minutes)
        return {
            "message_id": name,
            "type": "track",
            "event": name,
            "timestamp": at,
            "received_at": at,
        }

    # ids out of time order: the card follows the event time
    processed_event(cast.workspace, contact, **fields("Second Step", 10))
    processed_event(cast.workspace, contact, **fields("First Step", 0))
    processed_event(cast.workspace, contact, **fields("Third Step", 20))
    processed_event(cast.workspace, other, **fields("Someone Else", 5))
    processed_event(cast.workspace, None, **fields("Nobody", 6))
    pending_event(cast.workspace, **fields("Still Waiting", 7))
    html = console("owner").get(url(contact.pk, "events")).content.decode()
    assert html.index("Third Step") < html.index("Second Step") < html.index("First Step")
    for absent in ("Someone Else", "Nobody", "Still Waiting"):
        assert absent not in html, absent

"""A small pool whose every contact is known, for the rule compiler and refresh tests."""

import datetime
from dataclasses import dataclass

import pytest

from siyu.contacts import actions as contact_actions
from siyu.contacts.models import Contact
from siyu.core.audit import Actor
from siyu.segments.models import ContactScore
from siyu.tracking.models import DailyEventCount, Order, OrderItem
from tests.helpers import processed_event

NOW = datetime.datetime(2026, 11, 20, 4, 0, tzinfo=datetime.UTC)  # 12:00 in Shanghai
DAY = datetime.timedelta(days=1)


@dataclass
class Pool:
    ws: object
    c: dict[str, Contact]  # by name
    tags: dict[str, int]
    actor: Actor

    def ids(self, *names: str) -> set[int]:
        return {self.c[n].pk for n in names}

    @property
    def everyone(self) -> set[int]:
        return {c.pk for c in self.c.values()}


def _order(ws, contact, external_id, yuan, days_ago, refunded=0, items=()):
    order = Order.objects.create(
        workspace=ws,
        contact=contact,
        external_id=external_id,
        total_fen=yuan * 100,
        refunded_fen=refunded * 100,
        placed_at=NOW - days_ago * DAY,
    )
    for product_id, category in items:
        OrderItem.objects.create(
            workspace=ws,
            order=order,
            product_id=product_id,
            category=category,
            price_fen=yuan * 100,
            line_total_fen=yuan * 100,
        )
    return order


@pytest.fixture
def pool(cast, make_contact, system_actor) -> Pool:
    """Five people (and one in another workspace):
    王芳  上海, birthday in 3 days, vip 3, tag 会员, phone, sms granted, 3 orders (1,200 元
          in the last 30 days), viewed a product 5 times this week (price 199), active, high
    李娜  北京, no birthday, vip 1, tags 会员+新品, wecom id, sms withdrawn, 1 order 300 元
          60 days ago (bought sku-9 / 护肤), signed up 40 days ago, dormant
    张伟  上海, born in July, no attributes, no tags, no identity, no consent, no orders
    刘洋  杭州, owner = the operator, an order fully refunded, churned
    陈静  (no city) first seen long ago, never active"""
    ws = cast.workspace
    actor = system_actor
    contact_actions.attribute_define(
        workspace=ws, actor=actor, key="vip_level", label="会员等级", type="number"
    )
    contact_actions.attribute_define(
        workspace=ws, actor=actor, key="wedding", label="结婚纪念日", type="date"
    )
    group = contact_actions.tag_group_create(workspace=ws, actor=actor, name="身份")
    tags = {
        name: contact_actions.tag_create(workspace=ws, actor=actor, group=group, name=name).pk
        for name in ("会员", "新品", "黑名单")
    }
    c = {
        "王芳": make_contact(name="王芳", phone="13900000001"),
        "李娜": make_contact(name="李娜", wecom_external_userid="wm-li"),
        "张伟": make_contact(name="张伟"),
        "刘洋": make_contact(name="刘洋", owner=cast.operator),
        "陈静": make_contact(name="陈静", source="douyin"),
    }
    make_contact(name="王芳", phone="13900000001", workspace=cast.outsider_workspace)
    profile = {
        "王芳": dict(
            city="上海",
            birthday=datetime.date(1990, 11, 23),
            attributes={"vip_level": 3, "wedding": "2015-11-21"},
        ),
        "李娜": dict(city="北京", attributes={"vip_level": 1}),
        "张伟": dict(city="上海", birthday=datetime.date(1985, 7, 1)),
        "刘洋": dict(city="杭州"),
        "陈静": dict(),
    }
    seen = {"王芳": 1, "李娜": 20, "张伟": 5, "刘洋": 120, "陈静": 400}
    for name, fields in profile.items():
        Contact.objects.filter(pk=c[name].pk).update(
            **fields,
            first_seen_at=NOW - 400 * DAY,
            last_seen_at=NOW - seen[name] * DAY,
            created_at=NOW - 400 * DAY,
        )
        c[name].refresh_from_db()
    contact_actions.contacts_tag(
        workspace=ws, actor=actor, contact_ids=[c["王芳"].pk, c["李娜"].pk], add=[tags["会员"]]
    )
    contact_actions.contacts_tag(
        workspace=ws, actor=actor, contact_ids=[c["李娜"].pk], add=[tags["新品"]]
    )
    contact_actions.consent_set(
        workspace=ws, actor=actor, contact=c["王芳"], channel="sms", status="granted"
    )
    contact_actions.consent_set(
        workspace=ws, actor=actor, contact=c["李娜"], channel="sms", status="withdrawn"
    )
    _order(ws, c["王芳"], "o1", 500, 3, items=[("sku-1", "彩妆")])
    _order(ws, c["王芳"], "o2", 700, 10)
    _order(ws, c["王芳"], "o3", 100, 200)
    _order(ws, c["李娜"], "o4", 300, 60, items=[("sku-9", "护肤")])
    _order(ws, c["刘洋"], "o5", 80, 100, refunded=80)
    from siyu.tracking.aggregates import rebuild

    for day in range(5):  # 王芳 viewed a product every day this week
        processed_event(
            ws,
            c["王芳"],
            message_id=f"pv-{day}",
            type="track",
            event="Product Viewed",
            properties={"price": 199, "name": "口红"},
            timestamp=NOW - day * DAY,
            received_at=NOW,
        )
    rebuild(ws)  # stats and daily counts from the orders and events above
    DailyEventCount.objects.create(
        workspace=ws, contact=c["李娜"], day=(NOW - 40 * DAY).date(), event="Signed Up", count=1
    )
    scores = {
        "王芳": ("active", "high", 5, 5, 5, "champions"),
        "李娜": ("dormant", "low", 3, 3, 3, "need_attention"),
        "张伟": ("active", "none", None, None, None, ""),
        "刘洋": ("churned", "none", 1, 1, 1, "hibernating"),
        "陈静": ("churned", "none", None, None, None, ""),
    }
    for name, (stage, tier, r, f, m, rfm) in scores.items():
        ContactScore.objects.create(
            workspace=ws,
            contact=c[name],
            stage=stage,
            tier=tier,
            rfm_r=r,
            rfm_f=f,
            rfm_m=m,
            rfm_segment=rfm,
            p_alive=0.9 if name == "王芳" else None,
            expected_value_12m_fen=250000 if name == "王芳" else None,
        )
    return Pool(ws, c, tags, actor)

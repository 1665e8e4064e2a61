"""A year of believable activity for the demo brand's customers: orders (with items, coupons
and refunds), mini-program and official-account events, the product catalog, and the
per-contact aggregates, so that stages, tiers, RFM, segments and CLV have something to show.

Deterministic for a seed and `now`: customers are read in id order and each is drawn from
a `random.Random` of its own, seeded `activity:<seed>:<position>` (not the people
generator's seed, whose draws would be replayed; one per customer, so that a customer who
draws more or less, say when `now` moves by a minute, does not reshuffle everyone after).
Nothing depends on the ids themselves: two workspaces loaded with the same seed get the
same activity.

Who does what follows what the people generator already decided about each customer:
- the member level (普通 / 银卡 / 金卡 / 黑卡) sets how likely they are to buy and how much:
  high spenders buy several times a week (over 5,000 元 a year, seed 002's 高消费), mid
  spenders about weekly (1,000–5,000 元), low spenders now and then, most never;
- a `last_seen_at` more than LAPSED ago marks someone who has left: all their activity ends
  then (the customers who stopped months ago, what BG/NBD's P(alive) is about). Everyone
  else keeps their habits until `now`, and members visit at their `last_seen_at` too; some
  buyers stop buying part way while still opening the mini program;
- mini-program members (a user_id) send events; everyone else is seen only through the
  orders their store or advisor records (imported), so their `last_seen_at` may be later
  than any of them (a chat with the advisor, say);
- 偏好 tags pick their drinks, 燕麦过敏 keeps oat milk away, customers far from a store buy
  beans and drip bags by post.

Everything is written with bulk inserts (COPY on PostgreSQL); the aggregates (ContactStats,
DailyEventCount) are then rebuilt from the raw rows by `tracking.aggregates.rebuild`, the
one way they are computed."""

import datetime
import json
import operator
import random
import time
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from siyu.contacts.models import Contact, ContactTag, Identity, IdentityKind, TimelineEntry
from siyu.core import sqlbulk
from siyu.core.audit import Actor, audit
from siyu.core.models import Workspace
from siyu.demo import data
from siyu.tracking import aggregates
from siyu.tracking.models import (
    Event,
    MessageType,
    Order,
    OrderItem,
    OrderRefund,
    OrderSource,
    OrderStatus,
    Product,
    ResolvedEvent,
)
from siyu.tracking.orders import yuan

HISTORY_DAYS = 395  # about 13 months of activity, ending at `now`
BRAND = "山隅咖啡"
DAY = datetime.timedelta(days=1)
MINUTE = datetime.timedelta(minutes=1)

# Buyer classes by member level: (high, mid, low) odds; the rest never buy. The level is the
# brand's own reward for spending, so it predicts spending (not perfectly).
HIGH, MID, LOW, NONE = "high", "mid", "low", "none"
CLASS_ODDS: dict[str, tuple[float, float, float]] = {
    "黑卡": (0.80, 0.18, 0.02),
    "金卡": (0.45, 0.42, 0.10),
    "银卡": (0.10, 0.45, 0.25),
    "普通": (0.02, 0.12, 0.22),
    "": (0.0, 0.03, 0.12),  # no level: not a member and no phone on file
}
# Orders per day (median, lognormal sigma) per class: a high spender every third day or so,
# a mid spender once a week or more, a low spender a few times a year.
PURCHASE_RATE = {HIGH: (0.35, 0.2), MID: (0.18, 0.4), LOW: (0.012, 0.5)}
LAPSED = datetime.timedelta(days=60)
# Chance to stop buying before `last_seen_at` while still visiting, per class.
STOP_BUYING = {HIGH: 0.08, MID: 0.2, LOW: 0.2}
# Mini-program visits without an order, per day (before a per-person factor).
BROWSE_RATE = {HIGH: 0.06, MID: 0.045, LOW: 0.035, NONE: 0.03}
# Drinks per order: a high spender often buys a round for colleagues.
DRINKS = {HIGH: ((1, 2, 3, 4), (35, 35, 20, 10)), MID: ((1, 2, 3), (65, 28, 7))}
REFUND_RATE = 0.025

# Local hours (weights for 0..23): drinks around store hours, browsing and parcels evenings.
STORE_HOURS = (0, 0, 0, 0, 0, 0, 0, 3, 9, 10, 8, 7, 8, 7, 6, 7, 8, 7, 5, 4, 3, 2, 0, 0)
EVENING_HOURS = (1, 1, 0, 0, 0, 0, 1, 2, 4, 5, 6, 6, 7, 7, 6, 5, 5, 5, 6, 8, 9, 9, 7, 3)

MINI_PROGRAM = "小程序"
STORE = "门店"
WECOM = "企微"
OFFICIAL_ACCOUNT = "公众号"
MP_CONTEXT = {
    "library": {"name": "siyu-miniprogram", "version": "1.4.2"},
    "app": {"name": BRAND, "id": data.MINI_PROGRAM_APP_ID},
    "channel": MINI_PROGRAM,
}
MP_SCREENS = (("点单", 40), ("会员中心", 20), ("领券中心", 12), ("我的订单", 15), ("积分商城", 8))
ARTICLES = (
    ("秋冬新品 · 桂花拿铁回归", "autumn-latte"),
    ("每月 18 日会员日：满 50 减 15", "member-day"),
    ("一杯手冲的风味轮", "pour-over-flavors"),
    ("在家做一杯好咖啡：挂耳冲煮指南", "drip-bag-guide"),
    ("山隅咖啡豆产地故事 · 云南保山", "baoshan-origin"),
    ("新店开业 · 邀请好友各得一杯", "store-opening"),
)
ACTIVITY_ACTOR = "cli:demo"
_PRODUCTS = {p.product_id: p for p in data.PRODUCTS}


@dataclass
class ActivityCounts:
    orders: int = 0
    items: int = 0
    refunds: int = 0
    events: int = 0
    products: int = 0
    buyers: int = 0
    timeline: int = 0
    contacts_updated: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "orders": self.orders,
            "items": self.items,
            "refunds": self.refunds,
            "events": self.events,
            "products": self.products,
            "buyers": self.buyers,
            "timeline": self.timeline,
        }


@dataclass(slots=True)
class Customer:
    """What the generator needs to know about one contact."""

    pk: int
    created_at: datetime.datetime
    first_seen_at: datetime.datetime
    last_seen_at: datetime.datetime
    level: str
    cups: int | None
    store: str  # favourite store, "" for customers far from every store
    oat_allergy: bool
    tastes: frozenset[str]
    user_id: str  # mini-program member id, "" if not a member
    follower: bool  # follows the official account


@dataclass
class _ProductSeen:
    first: datetime.datetime
    last: datetime.datetime
    views: int = 0
    adds: int = 0


Row = dict[str, Any]  # one row to insert: attname -> value (plain dicts: cheap to make)


@dataclass
class _Rows:
    """Everything generated, before it is written."""

    events: list[Row] = field(default_factory=list)
    orders: list[Row] = field(default_factory=list)
    items: list[list[Row]] = field(default_factory=list)  # per order
    refunds: list[tuple[int, Row]] = field(default_factory=list)  # (order index, row)
    timeline: list[Row] = field(default_factory=list)
    seen: dict[int, tuple[datetime.datetime, datetime.datetime]] = field(default_factory=dict)
    products: dict[str, _ProductSeen] = field(default_factory=dict)


def _fen_number(fen: int) -> int | float:
    """Fen as the yuan number a Segment library sends (28 or 28.5, never 28.499999)."""
    return fen // 100 if fen % 100 == 0 else float(yuan(fen))


def _product_props(product: data.Product) -> dict:
    return {
        "product_id": product.product_id,
        "sku": product.product_id,
        "name": product.name,
        "category": product.category,
        "brand": BRAND,
        "price": _fen_number(product.price_fen),
        "currency": "CNY",
    }


def customers_of(workspace: Workspace) -> list[Customer]:
    """The workspace's contacts in id order, with their tags and member ids."""
    tastes: dict[int, set[str]] = {}
    for contact_id, name in ContactTag.objects.filter(
        workspace=workspace, tag__group__name=data.TASTE
    ).values_list("contact_id", "tag__name"):
        tastes.setdefault(contact_id, set()).add(name)
    members: dict[int, str] = {}
    followers: set[int] = set()
    for contact_id, kind, value, app_id in Identity.objects.filter(
        workspace=workspace, kind__in=[IdentityKind.USER_ID, IdentityKind.WECHAT_OPENID]
    ).values_list("contact_id", "kind", "value", "app_id"):
        if kind == IdentityKind.USER_ID:
            members[contact_id] = value
        elif app_id == data.OFFICIAL_ACCOUNT_APP_ID:
            followers.add(contact_id)
    out = []
    for pk, created, first, last, attrs in (
        Contact.objects.filter(workspace=workspace)
        .order_by("pk")
        .values_list("pk", "created_at", "first_seen_at", "last_seen_at", "attributes")
    ):
        attrs = attrs if isinstance(attrs, dict) else {}
        cups = attrs.get("cups_per_week")
        out.append(
            Customer(
                pk=pk,
                created_at=created,
                first_seen_at=first,
                last_seen_at=last,
                level=attrs.get("member_level") or "",
                cups=int(cups) if isinstance(cups, int | float) else None,
                store=attrs.get("favorite_store") or "",
                oat_allergy=attrs.get("allergy_oat") is True,
                tastes=frozenset(tastes.get(pk, ())),
                user_id=members.get(pk, ""),
                follower=pk in followers,
            )
        )
    return out


class _Generator:
    def __init__(self, workspace: Workspace, now: datetime.datetime):
        self.ws = workspace.pk
        self.rng = random.Random()  # the current customer's (see `customer`)
        self.now = now
        self.tz = zoneinfo.ZoneInfo(workspace.timezone)
        self.horizon = now - HISTORY_DAYS * DAY
        self.rows = _Rows()
        self.order_seq = 0
        self.home_brewer = False  # of the customer being generated
        self.by_kind: dict[str, list[data.Product]] = {}
        for product in data.PRODUCTS:
            self.by_kind.setdefault(product.kind, []).append(product)

    # --- one customer ---------------------------------------------------------------------

    def customer(self, c: Customer) -> None:
        rng = self.rng
        start = max(c.created_at, self.horizon)
        # people.py's last_seen_at says who lapsed (long ago): their activity ends then.
        # Everyone else is still around: their habits run on until now, and their last
        # visit (members) is at their last_seen_at or later.
        lapsed = c.last_seen_at <= self.now - LAPSED
        end = c.last_seen_at if lapsed else self.now
        buyer = self._class(c, (end - start) / DAY)
        rate = self._rate(c, buyer)
        stops = rng.random() < STOP_BUYING.get(buyer, 0.0)
        stop_share = rng.uniform(0.2, 0.8)
        browse = BROWSE_RATE[buyer] * rng.lognormvariate(0, 0.6)
        # brews at home too: buys beans and drip bags with the drinks now and then
        self.home_brewer = "手冲" in c.tastes or rng.random() < 0.2
        if end < start:  # lapsed before the history begins: nothing to generate
            return
        if c.user_id and c.created_at >= self.horizon:
            self._signed_up(c, c.created_at)
        if buyer != NONE:
            buy_end = start + (end - start) * stop_share if stops else end
            self._purchases(c, buyer, rate, start, buy_end)
        if c.user_id:
            t = start + datetime.timedelta(days=rng.expovariate(browse))
            while t < end:
                self._browse(c, t, start)
                t += datetime.timedelta(days=rng.expovariate(browse))
            if c.last_seen_at >= start:
                self._browse(c, c.last_seen_at, start)  # the visit that made them last seen

    def _class(self, c: Customer, window_days: float) -> str:
        high, mid, low = CLASS_ODDS.get(c.level, CLASS_ODDS[""])
        if window_days < 150:  # a big spender is rarely a newcomer: the level came with time
            high, mid = high * 0.25, mid + high * 0.75
        if not c.user_id:  # the big spenders are members: points, levels, order ahead
            high, mid = high * 0.2, mid * 0.4
        r = self.rng.random()
        if r < high:
            return HIGH
        if r < high + mid:
            return MID
        return LOW if r < high + mid + low else NONE

    def _rate(self, c: Customer, buyer: str) -> float:
        median, sigma = PURCHASE_RATE.get(buyer, (0.0, 0.0))
        rate = median * self.rng.lognormvariate(0, sigma) if median else 0.0
        if c.cups is not None:  # the cups a week they told us about
            rate *= 0.8 + 0.08 * min(c.cups, 6)
        if not c.store:  # far from a store: beans and drip bags by post, now and then
            rate *= 0.35
        return rate

    # --- orders ----------------------------------------------------------------------------

    def _purchases(
        self,
        c: Customer,
        buyer: str,
        rate: float,
        start: datetime.datetime,
        end: datetime.datetime,
    ) -> None:
        rng = self.rng
        if rate <= 0:
            return
        # the first order soon after joining (the welcome coupon), then gamma-distributed
        # gaps: more regular than a Poisson process, as a habit is
        if c.created_at >= self.horizon:
            t = start + datetime.timedelta(days=rng.expovariate(1 / 4))
        else:
            t = start + datetime.timedelta(days=rng.expovariate(rate))
        first = True
        while t < end:
            hours = STORE_HOURS if c.store else EVENING_HOURS
            at = self._snap(t, hours, start + 10 * MINUTE, end)
            self._order(c, buyer, at, first=first and c.created_at >= self.horizon)
            first = False
            t += datetime.timedelta(days=rng.gammavariate(2, 1 / (2 * rate)))

    def _channel(self, c: Customer) -> str:
        rng = self.rng
        if c.store:
            if c.user_id:
                return rng.choices((MINI_PROGRAM, STORE, WECOM), (60, 35, 5))[0]
            return rng.choices((STORE, WECOM), (85, 15))[0]
        return MINI_PROGRAM if c.user_id and rng.random() < 0.9 else WECOM

    def _pick(self, c: Customer, kind: str) -> data.Product:
        options = [p for p in self.by_kind[kind] if not (c.oat_allergy and p.oat)]
        weights = [p.weight * (4 if p.taste and p.taste in c.tastes else 1) for p in options]
        return self.rng.choices(options, weights)[0]

    def _basket(self, c: Customer, buyer: str, at: datetime.datetime) -> Counter:
        rng = self.rng
        big = buyer == HIGH
        lines: Counter = Counter()
        if c.store:
            counts, weights = DRINKS.get(buyer, DRINKS[MID])
            for _ in range(rng.choices(counts, weights)[0]):
                lines[self._pick(c, data.DRINK)] += 1
            if rng.random() < (0.4 if big else 0.28):
                lines[self._pick(c, data.FOOD)] += 1
            if rng.random() < (0.1 if self.home_brewer else 0.003):
                lines[self._pick(c, data.RETAIL)] += 1
        else:
            for _ in range(rng.choices((1, 2, 3), (60, 30, 10))[0]):
                lines[self._pick(c, data.RETAIL)] += 1
        if rng.random() < (0.03 if big else 0.006) * (1 if self.home_brewer else 0.3):
            lines[self._pick(c, data.GEAR)] += 1
        month = at.astimezone(self.tz).month
        gift_season = month in (1, 2, 9)  # 春节 and 中秋
        if rng.random() < (0.08 if big else 0.02) * (1 if gift_season else 0.15):
            lines[self._pick(c, data.GIFT)] += 1
        return lines

    def _coupon(
        self, c: Customer, at: datetime.datetime, subtotal: int, first: bool, lines: Counter
    ) -> tuple[str, str, int] | None:
        """The coupon a mini-program order used, if any: (id, name, discount fen)."""
        rng = self.rng
        local = at.astimezone(self.tz)
        by_id = {cid: (cid, name, threshold, off) for cid, name, threshold, off in data.COUPONS}
        wanted = None
        if first and rng.random() < 0.7:
            wanted = "CP-NEW10"
        elif local.day == 18 and rng.random() < 0.5:
            wanted = "CP-DAY18"
        elif local.weekday() == 2 and rng.random() < 0.25:
            wanted = "CP-WED5"
        elif any(p.category == "咖啡豆" for p in lines) and rng.random() < 0.3:
            wanted = "CP-BEAN20"
        if wanted is None:
            return None
        cid, name, threshold, off = by_id[wanted]
        return (cid, name, off) if subtotal >= threshold else None

    def _order(self, c: Customer, buyer: str, at: datetime.datetime, *, first: bool) -> None:
        rng, ws = self.rng, self.ws
        channel = self._channel(c)
        lines = self._basket(c, buyer, at)
        products = sorted(lines, key=lambda p: p.product_id)
        subtotal = sum(p.price_fen * lines[p] for p in products)
        coupon = self._coupon(c, at, subtotal, first, lines) if channel == MINI_PROGRAM else None
        discount = coupon[2] if coupon else 0
        shipping = 1000 if not c.store and subtotal < 9900 else 0  # parcels under 99 元
        total = subtotal - discount + shipping
        self.order_seq += 1
        external_id = f"SY{at.astimezone(self.tz):%Y%m%d}{self.order_seq:06d}"
        message_id = ""
        if channel == MINI_PROGRAM:
            message_id = self._order_session(
                c, at, products, lines, coupon, external_id, (total, discount, shipping)
            )
        elif channel == STORE and c.user_id:
            # shows the member code at the till to earn points
            self._event(c, at - rng.uniform(1, 4) * MINUTE, MessageType.SCREEN, "会员码", {})
        order = {
            "workspace_id": ws,
            "contact_id": c.pk,
            "external_id": external_id,
            "status": OrderStatus.COMPLETED,
            "currency": "CNY",
            "total_fen": total,
            "discount_fen": discount,
            "shipping_fen": shipping,
            "channel": channel,
            "placed_at": at,
            "source": OrderSource.EVENT if message_id else OrderSource.IMPORT,
            "message_id": message_id,
            "created_at": at,
            "updated_at": at,
        }
        items = [
            {
                "workspace_id": ws,
                "product_id": p.product_id,
                "sku": p.product_id,
                "name": p.name,
                "category": p.category,
                "price_fen": p.price_fen,
                "quantity": lines[p],
                "line_total_fen": p.price_fen * lines[p],
            }
            for p in products
        ]
        index = len(self.rows.orders)
        self.rows.orders.append(order)
        self.rows.items.append(items)
        actor = "mini-program" if message_id else f"import:{'pos' if channel == STORE else 'wecom'}"
        self._timeline(
            c.pk,
            "order_placed",
            {"order_id": external_id, "total": yuan(total), "currency": "CNY", "items": len(items)},
            actor,
            at,
        )
        self._seen(c.pk, at)
        if message_id:  # the catalog is built from events: the Order Completed names these
            for p in products:
                self._product(p, at)
        if rng.random() < REFUND_RATE:
            self._refund(c, index, order, items)

    def _refund(self, c: Customer, index: int, order: Row, items: list[Row]) -> None:
        """A full refund (a cancelled order), or one line of it (a drink made wrong)."""
        rng = self.rng
        placed, latest = order["placed_at"], self.now - MINUTE
        at = placed + rng.uniform(10, 36 * 60) * MINUTE
        if at > latest:
            if placed + MINUTE > latest:
                return
            at = placed + (latest - placed) * rng.random()
        partial = len(items) > 1 and rng.random() < 0.45
        amount = items[-1]["line_total_fen"] if partial else order["total_fen"]
        order["refunded_fen"] = amount
        order["status"] = OrderStatus.PARTIALLY_REFUNDED if partial else OrderStatus.REFUNDED
        order["updated_at"] = at
        refund = {
            "workspace_id": self.ws,
            "refund_id": f"RF{order['external_id'][2:]}",
            "amount_fen": amount,
            "created_at": at,
        }
        self.rows.refunds.append((index, refund))
        self._timeline(
            c.pk,
            "order_refunded",
            {
                "order_id": order["external_id"],
                "amount": yuan(amount),
                "refunded": yuan(amount),
                "total": yuan(order["total_fen"]),
                "currency": "CNY",
            },
            "api:pos-refund",
            at,
        )

    # --- events ----------------------------------------------------------------------------

    def _order_session(
        self,
        c: Customer,
        at: datetime.datetime,
        products: list[data.Product],
        lines: Counter,
        coupon: tuple[str, str, int] | None,
        external_id: str,
        money: tuple[int, int, int],
    ) -> str:
        """The mini-program visit that placed an order, ending with its Order Completed;
        returns that event's message id."""
        steps: list[tuple[str, str, dict]] = [(MessageType.SCREEN, "点单", {})]
        if self.rng.random() < 0.5:
            steps.append((MessageType.TRACK, "Product Viewed", _product_props(products[0])))
        if coupon:
            cid, name, off = coupon
            props = {"coupon_id": cid, "coupon_name": name, "discount": _fen_number(off)}
            steps.append((MessageType.TRACK, "Coupon Claimed", props))
        for p in products:
            props = {**_product_props(p), "quantity": lines[p]}
            steps.append((MessageType.TRACK, "Product Added", props))
        total, discount, shipping = money
        completed = {
            "order_id": external_id,
            "total": _fen_number(total),
            "discount": _fen_number(discount),
            "shipping": _fen_number(shipping),
            "currency": "CNY",
            "channel": MINI_PROGRAM,
            **({"coupon": coupon[0]} if coupon else {}),
            "products": [
                {
                    "product_id": p.product_id,
                    "sku": p.product_id,
                    "name": p.name,
                    "category": p.category,
                    "price": _fen_number(p.price_fen),
                    "quantity": lines[p],
                }
                for p in products
            ],
        }
        steps.append((MessageType.TRACK, "Order Completed", completed))
        return self._session(c, at, steps, earliest=None)[-1]["message_id"]

    def _browse(self, c: Customer, at: datetime.datetime, start: datetime.datetime) -> None:
        """A visit without an order, its last event at `at`: a look at the menu, products
        viewed, sometimes a cart left behind or a coupon claimed; or an official-account
        article."""
        rng = self.rng
        steps: list[tuple[str, str, dict]]
        if c.follower and rng.random() < 0.2:
            title, slug = rng.choice(ARTICLES)
            url = f"https://h5.shanyu.coffee/articles/{slug}"
            steps = [(MessageType.PAGE, "公众号文章", {"title": title, "url": url})]
            if rng.random() < 0.4:
                product = self._pick(c, rng.choice((data.DRINK, data.RETAIL)))
                steps.append((MessageType.TRACK, "Product Viewed", _product_props(product)))
            self._session(c, at, steps, earliest=start, article=slug)
            return
        steps = [(MessageType.SCREEN, "首页", {})]
        screen = rng.choices([s for s, _ in MP_SCREENS], [w for _, w in MP_SCREENS])[0]
        steps.append((MessageType.SCREEN, screen, {}))
        viewed = []
        for _ in range(rng.choices((0, 1, 2, 3), (25, 40, 25, 10))[0]):
            kind = data.DRINK if c.store and rng.random() < 0.75 else data.RETAIL
            product = self._pick(c, kind)
            viewed.append(product)
            steps.append((MessageType.TRACK, "Product Viewed", _product_props(product)))
        if viewed and rng.random() < 0.22:  # added to the cart, then left
            props = {**_product_props(viewed[-1]), "quantity": 1}
            steps.append((MessageType.TRACK, "Product Added", props))
        member_day = at.astimezone(self.tz).day == 18
        if rng.random() < (0.45 if member_day else 0.05):
            cid, name, _threshold, off = rng.choice(data.COUPONS)
            props = {"coupon_id": cid, "coupon_name": name, "discount": _fen_number(off)}
            steps.append((MessageType.TRACK, "Coupon Claimed", props))
        self._session(c, at, steps, earliest=start)

    def _signed_up(self, c: Customer, at: datetime.datetime) -> None:
        """Joining the mini program's membership, when the contact was created."""
        steps = [
            (MessageType.SCREEN, "首页", {}),
            (MessageType.TRACK, "Signed Up", {"method": "微信手机号快捷登录"}),
        ]
        self._session(c, at + 2 * MINUTE, steps, earliest=at)

    def _session(
        self,
        c: Customer,
        last_at: datetime.datetime,
        steps: Sequence[tuple[str, str, dict]],
        *,
        earliest: datetime.datetime | None,
        article: str = "",
    ) -> list[Row]:
        """The steps as events a few seconds to a minute apart, the last at `last_at` (never
        before `earliest`)."""
        rng = self.rng
        gaps = [rng.uniform(5, 70) for _ in steps[1:]]
        span = datetime.timedelta(seconds=sum(gaps))
        if earliest is not None and last_at - span < earliest:
            shrink = max(0.0, (last_at - earliest).total_seconds()) / max(sum(gaps), 1)
            gaps = [g * shrink for g in gaps]
        times = [last_at]
        for gap in reversed(gaps):
            times.append(times[-1] - datetime.timedelta(seconds=gap))
        times.reverse()
        out = []
        for (kind, name, props), at in zip(steps, times, strict=True):
            out.append(self._event(c, at, kind, name, props, article=article))
        return out

    def _event(
        self,
        c: Customer,
        at: datetime.datetime,
        kind: str,
        name: str,
        props: dict,
        *,
        article: str = "",
    ) -> Row:
        rng = self.rng
        if kind == MessageType.PAGE:
            context = {
                "library": {"name": "analytics.js", "version": "5.2.0"},
                "campaign": {"source": "wechat_oa", "medium": "article", "name": article},
                "channel": OFFICIAL_ACCOUNT,
            }
        else:
            context = MP_CONTEXT
        # received a moment later (never after `now`: the demo is loaded at `now`)
        received = min(at + datetime.timedelta(seconds=rng.uniform(0.2, 3)), max(at, self.now))
        event = {
            "workspace_id": self.ws,
            "message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": kind,
            "user_id": c.user_id,
            "event": name,
            "properties": props,
            "context": context,
            "timestamp": at,
            "original_timestamp": at,
            "sent_at": at,
            "received_at": received,
            "created_at": received,
            # not Event columns (_insert skips them): its ResolvedEvent row's, see _write
            "contact_id": c.pk,
            "processed_at": min(
                received + datetime.timedelta(seconds=rng.uniform(0.5, 5)), max(at, self.now)
            ),
        }
        self.rows.events.append(event)
        self._seen(c.pk, at)
        if name in ("Product Viewed", "Product Added"):
            product = _PRODUCTS[props["product_id"]]
            seen = self._product(product, at)
            if name == "Product Viewed":
                seen.views += 1
            else:
                seen.adds += 1
        return event

    # --- bookkeeping -----------------------------------------------------------------------

    def _snap(
        self,
        t: datetime.datetime,
        hours: Sequence[int],
        lo: datetime.datetime,
        hi: datetime.datetime,
    ) -> datetime.datetime:
        """`t` moved to a likely hour of its local day; `t` itself if that leaves [lo, hi]."""
        rng = self.rng
        day = t.astimezone(self.tz).date()
        hour = rng.choices(range(24), hours)[0]
        local = datetime.datetime.combine(
            day, datetime.time(hour, rng.randrange(60), rng.randrange(60)), self.tz
        )
        moment = local.astimezone(datetime.UTC)
        return moment if lo <= moment <= hi else t

    def _seen(self, contact_id: int, at: datetime.datetime) -> None:
        first, last = self.rows.seen.get(contact_id, (at, at))
        self.rows.seen[contact_id] = (min(first, at), max(last, at))

    def _product(self, product: data.Product, at: datetime.datetime) -> _ProductSeen:
        seen = self.rows.products.get(product.product_id)
        if seen is None:
            seen = self.rows.products[product.product_id] = _ProductSeen(at, at)
        seen.first, seen.last = min(seen.first, at), max(seen.last, at)
        return seen

    def _timeline(
        self, contact_id: int, kind: str, payload: dict, actor: str, at: datetime.datetime
    ) -> None:
        self.rows.timeline.append(
            {
                "workspace_id": self.ws,
                "contact_id": contact_id,
                "kind": kind,
                "data": payload,
                "actor_label": actor,
                "created_at": at,
            }
        )


def load_activity(
    workspace: Workspace, *, seed: int, now: datetime.datetime | None = None
) -> ActivityCounts:
    """Generate and write the activity of all the workspace's contacts, then rebuild their
    aggregates. Call once per workspace, after its contacts are inserted."""
    started = time.perf_counter()
    now = now or timezone.now()
    gen = _Generator(workspace, now)
    customers = customers_of(workspace)
    for position, customer in enumerate(customers):
        gen.rng = random.Random(f"activity:{seed}:{position}")
        gen.customer(customer)
    rows = gen.rows
    counts = ActivityCounts()
    # one transaction: the ids reserved on SQLite (sqlbulk.reserve_ids) stay ours until it ends
    with transaction.atomic():
        _write(workspace, rows, counts, now)
        counts.contacts_updated = _update_seen(rows, {c.pk: c for c in customers})
        aggregates.rebuild(workspace)
        counts.buyers = len({o["contact_id"] for o in rows.orders})
        audit(
            workspace=workspace,
            actor=Actor.system(ACTIVITY_ACTOR),
            action="demo.activity",
            obj=workspace,
            after={"seed": seed, **counts.as_dict()},
        )
    counts.seconds = time.perf_counter() - started
    return counts


def _sqlite_value(field: models.Field) -> Callable[[Any], Any] | None:
    """A field's value as Django itself writes it to SQLite (date-times as naive UTC text,
    JSON as text), without Django's per-value machinery."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        # most events share one context object (and one empty traits dict): encode it once
        last: list[Any] = [None, None]  # [the object, its text], held so its id stays its

        def to_json(v: Any) -> str | None:
            if v is None:
                return None
            if v is not last[0]:
                last[:] = [v, json.dumps(v, cls=encoder)]
            return last[1]

        return to_json
    if isinstance(field, models.DateTimeField):
        utc = datetime.UTC

        def to_text(v: datetime.datetime | None) -> str | None:
            if v is None:
                return None
            return (v if v.tzinfo is utc else v.astimezone(utc)).replace(tzinfo=None).isoformat(" ")

        return to_text
    return None  # taken as it is


def _insert(model: type[models.Model], rows: list[Row], *, with_ids: bool = False) -> None:
    """Insert plain rows (attname -> value; missing fields take their defaults): COPY on
    PostgreSQL, one `executemany` on SQLite. Building model instances and bulk_create
    cost four times as much for the demo's events (Django prepares every value one by one
    and, on SQLite, sends 50 events a statement). With `with_ids`, ids are reserved first
    and set on the rows."""
    if not rows:
        return
    if with_ids:
        for row, pk in zip(rows, sqlbulk.reserve_ids(model, len(rows)), strict=True):
            row["id"] = pk
    # an auto-increment id is left to the database unless reserved; any other key is given
    auto = model._meta.auto_field
    fields = [f for f in model._meta.concrete_fields if with_ids or f is not auto]
    defaults = {f.attname: f.get_default() for f in fields if not f.primary_key}
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        wrap = [(f.attname, Jsonb if isinstance(f, models.JSONField) else None) for f in fields]
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    values = [row.get(name, defaults.get(name)) for name, _ in wrap]
                    copy.write_row(
                        [
                            w(v) if w and v is not None else v
                            for (_, w), v in zip(wrap, values, strict=True)
                        ]
                    )
        return
    values = operator.itemgetter(*(f.attname for f in fields))
    convert = [(i, conv) for i, f in enumerate(fields) if (conv := _sqlite_value(f))]
    params = []
    for row in rows:
        params.append(line := list(values({**defaults, **row})))
        for i, conv in convert:
            line[i] = conv(line[i])
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", params)


def _write(workspace: Workspace, rows: _Rows, counts: ActivityCounts, now) -> None:
    _insert(Order, rows.orders, with_ids=True)  # in time order, as a shop numbers them
    items = []
    for order, lines in zip(rows.orders, rows.items, strict=True):
        for item in lines:
            item["order_id"] = order["id"]
            items.append(item)
    _insert(OrderItem, items)
    refunds = []
    for index, refund in rows.refunds:
        refund["order_id"] = rows.orders[index]["id"]
        refunds.append(refund)
    _insert(OrderRefund, refunds)
    rows.events.sort(key=lambda e: e["received_at"])  # ids in arrival order, as ingest gives
    # ids reserved up front: each event's resolution row names it (all of them processed)
    _insert(Event, rows.events, with_ids=True)
    resolutions = [
        {
            "event_id": e["id"],
            "workspace_id": e["workspace_id"],
            "contact_id": e["contact_id"],
            "timestamp": e["timestamp"],
            "processed_at": e["processed_at"],
        }
        for e in rows.events
    ]
    _insert(ResolvedEvent, resolutions)
    rows.timeline.sort(key=lambda t: t["created_at"])
    _insert(TimelineEntry, rows.timeline)
    products = [
        {
            "workspace_id": workspace.pk,
            "product_id": p.product_id,
            "sku": p.product_id,
            "name": p.name,
            "category": p.category,
            "brand": BRAND,
            "price_fen": p.price_fen,
            "currency": "CNY",
            "url": f"pages/goods/detail?id={p.product_id}",
            "first_seen_at": seen.first,
            "last_seen_at": seen.last,
            "views": seen.views,
            "adds": seen.adds,
            "updated_at": now,
        }
        for p in data.PRODUCTS
        if (seen := rows.products.get(p.product_id)) is not None
    ]
    _insert(Product, products)
    counts.orders, counts.items, counts.refunds = len(rows.orders), len(items), len(refunds)
    counts.events, counts.products = len(rows.events), len(products)
    counts.timeline = len(rows.timeline)


def _update_seen(rows: _Rows, customers: dict[int, Customer]) -> int:
    """Widen each contact's first / last seen to its events and orders, with set updates
    (only the rows that change)."""
    changed = []
    for pk, (first, last) in sorted(rows.seen.items()):
        c = customers[pk]
        new_first, new_last = min(c.first_seen_at, first), max(c.last_seen_at, last)
        if (new_first, new_last) != (c.first_seen_at, c.last_seen_at):
            changed.append((pk, new_first, new_last))
    return sqlbulk.update_from_values(
        Contact._meta.db_table,
        [("id", "int"), ("first_seen", "ts"), ("last_seen", "ts")],
        changed,
        "first_seen_at = v.first_seen, last_seen_at = v.last_seen",
    )

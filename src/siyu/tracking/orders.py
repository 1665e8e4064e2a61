"""Orders: parsing money (yuan in, integer fen stored), creating an order idempotently by the
brand's order id, refunding, and the mapping of Segment e-commerce events (`Order Completed`,
`Order Refunded`) to orders. See docs/tracking.md, "Orders"."""

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.contacts.timeline import timeline_add
from siyu.core import sqlbulk
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, SiyuError, ValidationError
from siyu.core.models import Workspace
from siyu.tracking import aggregates
from siyu.tracking.models import Order, OrderItem, OrderRefund, OrderSource, OrderStatus

MAX_FEN = 10**17  # 1e15 yuan: far above any order, far below BigIntegerField's limit
MAX_QUANTITY = 1_000_000
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
ORDER_EVENTS = frozenset({ORDER_COMPLETED, ORDER_REFUNDED})
_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


# --- parsing -----------------------------------------------------------------------------------


def parse_money(value: Any, where: str) -> int:
    """Yuan as a JSON number or a string ("199", "199.9", "199.90", 199.9) -> exact fen.
    At most 2 decimal places (after trailing zeros); never negative."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError(where, "an amount in yuan is required (a number or a string)")
    text = str(value).strip()
    if not _AMOUNT.match(text):
        raise ValidationError(where, "not an amount in yuan: %(value)r", params={"value": value})
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValidationError(where, "not an amount in yuan") from exc
    if amount < 0:
        raise ValidationError(where, "must not be negative")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValidationError(where, "at most 2 decimal places (fen)")
    if fen > MAX_FEN:
        raise ValidationError(where, "too large")
    return int(fen)


def yuan(fen: int) -> str:
    """Integer fen shown as yuan with two decimals: 19990 -> "199.90"."""
    return f"{Decimal(fen) / 100:.2f}"


def _text(value: Any, where: str, max_length: int = 255) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(where, "must be a string")
    text = str(value).strip()
    if len(text) > max_length:
        raise ValidationError(where, "at most %(n)s characters", params={"n": max_length})
    return text


def _quantity(value: Any, where: str) -> int:
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(where, "must be a whole number")
    if not 1 <= value <= MAX_QUANTITY:
        raise ValidationError(where, "must be between 1 and %(n)s", params={"n": MAX_QUANTITY})
    return value


@dataclass(frozen=True)
class ItemInput:
    product_id: str
    sku: str
    name: str
    category: str
    price_fen: int
    quantity: int

    @property
    def line_total_fen(self) -> int:
        return self.price_fen * self.quantity


@dataclass
class OrderInput:
    external_id: str
    currency: str
    total_fen: int
    discount_fen: int = 0
    shipping_fen: int = 0
    tax_fen: int = 0
    channel: str = ""
    placed_at: datetime.datetime | None = None
    items: list[ItemInput] = field(default_factory=list)


def parse_order(
    data: dict[str, Any], workspace: Workspace, *, id_key: str = "external_id"
) -> OrderInput:
    """An order from an API body (`external_id`, `total`) or Segment `Order Completed`
    properties (`order_id`, `total` or `revenue`). Raises ValidationError naming the field."""
    external_id = _text(data.get(id_key), id_key)
    if not external_id:
        raise ValidationError(id_key, "the order id is required")
    currency = data.get("currency")
    if currency in (None, ""):
        currency = workspace.currency
    elif not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValidationError("currency", "a 3-letter currency code (ISO 4217) is required")
    products = data.get("products")
    if products is None:
        products = []
    if not isinstance(products, list):
        raise ValidationError("products", "must be a list")
    items = []
    for n, product in enumerate(products):
        where = f"products[{n}]"
        if not isinstance(product, dict):
            raise ValidationError(where, "must be an object")
        items.append(
            ItemInput(
                product_id=_text(product.get("product_id"), f"{where}.product_id"),
                sku=_text(product.get("sku"), f"{where}.sku"),
                name=_text(product.get("name"), f"{where}.name"),
                category=_text(product.get("category"), f"{where}.category"),
                price_fen=parse_money(product.get("price"), f"{where}.price"),
                quantity=_quantity(product.get("quantity"), f"{where}.quantity"),
            )
        )
    parts = {}
    for key in ("discount", "shipping", "tax"):
        value = data.get(key)
        parts[key] = 0 if value in (None, "") else parse_money(value, key)
    if data.get("total") not in (None, ""):
        total = parse_money(data["total"], "total")
    elif id_key == "order_id" and data.get("revenue") not in (None, ""):
        total = parse_money(data["revenue"], "revenue")
    elif id_key == "order_id" and items:
        total = max(
            0,
            sum(i.line_total_fen for i in items)
            - parts["discount"]
            + parts["shipping"]
            + parts["tax"],
        )
    else:
        raise ValidationError("total", "the order total (yuan) is required")
    placed_at = data.get("placed_at")
    if placed_at is not None and not isinstance(placed_at, datetime.datetime):
        raise ValidationError("placed_at", "must be a date-time")
    return OrderInput(
        external_id=external_id,
        currency=currency.upper(),
        total_fen=total,
        discount_fen=parts["discount"],
        shipping_fen=parts["shipping"],
        tax_fen=parts["tax"],
        channel=_text(data.get("channel") or data.get("store"), "channel", 120),
        placed_at=placed_at,
        items=items,
    )


# --- actions -----------------------------------------------------------------------------------


def _items_of(order: Order) -> list[ItemInput]:
    return [
        ItemInput(i.product_id, i.sku, i.name, i.category, i.price_fen, i.quantity)
        for i in order.items.order_by("id")
    ]


def _same(order: Order, contact_id: int | None, data: OrderInput) -> bool:
    """Whether an existing order has the contents `data` asks for (a retry, not a change)."""
    return (
        order.contact_id == contact_id
        and order.currency == data.currency
        and (order.total_fen, order.discount_fen, order.shipping_fen, order.tax_fen)
        == (data.total_fen, data.discount_fen, data.shipping_fen, data.tax_fen)
        and order.channel == data.channel
        and (data.placed_at is None or order.placed_at == data.placed_at)
        and _items_of(order) == data.items
    )


def _same_contents(first: OrderInput, data: OrderInput) -> bool:
    """`_same` for an order not yet written (the contact and time are not compared)."""
    return (
        first.currency == data.currency
        and (first.total_fen, first.discount_fen, first.shipping_fen, first.tax_fen)
        == (data.total_fen, data.discount_fen, data.shipping_fen, data.tax_fen)
        and first.channel == data.channel
        and first.items == data.items
    )


def snapshot(order: Order) -> dict[str, Any]:
    return {
        "external_id": order.external_id,
        "contact_id": order.contact_id,
        "status": order.status,
        "currency": order.currency,
        "total_fen": order.total_fen,
        "refunded_fen": order.refunded_fen,
        "source": order.source,
    }


def order_create(
    *,
    workspace: Workspace,
    actor: Actor,
    contact: Contact,
    data: OrderInput,
    source: str = OrderSource.API,
    message_id: str = "",
) -> tuple[Order, bool]:
    """(order, created). Idempotent by `data.external_id`: an existing order with the same
    contents is returned unchanged (created False); different contents raise Conflict."""
    existing = Order.objects.filter(workspace=workspace, external_id=data.external_id).first()
    if existing is None:
        try:
            with transaction.atomic():
                return _create(workspace, actor, contact, data, source, message_id), True
        except IntegrityError:  # created meanwhile by a concurrent request
            existing = Order.objects.get(workspace=workspace, external_id=data.external_id)
    if _same(existing, contact.pk, data):
        return existing, False
    raise Conflict(
        "order %(external_id)s already exists with different contents",
        params={"external_id": data.external_id},
        code="order_exists",
        details={"field": "external_id", "order_id": existing.pk},
    )


def _unsaved_order(workspace, contact_id, data: OrderInput, source, message_id, now) -> Order:
    return Order(
        workspace=workspace,
        contact_id=contact_id,
        external_id=data.external_id,
        currency=data.currency,
        total_fen=data.total_fen,
        discount_fen=data.discount_fen,
        shipping_fen=data.shipping_fen,
        tax_fen=data.tax_fen,
        channel=data.channel,
        placed_at=data.placed_at or now,
        source=source,
        message_id=message_id,
        created_at=now,
        updated_at=now,
    )


def _unsaved_items(workspace, order: Order, data: OrderInput) -> list[OrderItem]:
    return [
        OrderItem(
            workspace=workspace,
            order_id=order.pk,
            product_id=i.product_id,
            sku=i.sku,
            name=i.name,
            category=i.category,
            price_fen=i.price_fen,
            quantity=i.quantity,
            line_total_fen=i.line_total_fen,
        )
        for i in data.items
    ]


def _placed(order: Order, data: OrderInput) -> dict[str, Any]:
    """The data of an order's `order_placed` timeline row."""
    return {
        "order_id": order.external_id,
        "total": yuan(order.total_fen),
        "currency": order.currency,
        "items": len(data.items),
    }


def _create(workspace, actor, contact, data: OrderInput, source, message_id) -> Order:
    order = _unsaved_order(workspace, contact.pk, data, source, message_id, timezone.now())
    order.save(force_insert=True)
    OrderItem.objects.bulk_create(_unsaved_items(workspace, order, data))
    audit(workspace=workspace, actor=actor, action="order.create", obj=order, after=snapshot(order))
    timeline_add(contact, "order_placed", actor, **_placed(order, data))
    aggregates.touch(workspace, [contact.pk])
    return order


def order_refund(
    *,
    workspace: Workspace,
    actor: Actor,
    order: Order,
    amount_fen: int | None = None,
    refund_id: str = "",
    where: str = "amount",
) -> tuple[Order, bool]:
    """(order, refunded). Refund `amount_fen` (all that remains when None), never more than
    remains. A `refund_id` seen before for this order with the same amount is a retry: nothing
    changes (refunded False); with another amount, Conflict."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk, workspace=workspace)
        if refund_id:
            done = OrderRefund.objects.filter(order=order, refund_id=refund_id).first()
            if done is not None:
                if amount_fen is None or amount_fen == done.amount_fen:
                    return order, False
                raise Conflict(
                    "refund %(refund_id)s was already made with another amount",
                    params={"refund_id": refund_id},
                    code="refund_exists",
                    details={"field": "refund_id"},
                )
        remaining = order.total_fen - order.refunded_fen
        if amount_fen is None:
            amount_fen = remaining
        if remaining <= 0:
            raise ValidationError(where, "the order is already fully refunded")
        if amount_fen <= 0:
            raise ValidationError(where, "must be more than 0")
        if amount_fen > remaining:
            raise ValidationError(
                where,
                "more than what remains to refund (%(remaining)s)",
                params={"remaining": yuan(remaining)},
            )
        before = snapshot(order)
        OrderRefund.objects.create(
            workspace=workspace, order=order, refund_id=refund_id, amount_fen=amount_fen
        )
        order.refunded_fen += amount_fen
        order.status = (
            OrderStatus.REFUNDED
            if order.refunded_fen >= order.total_fen
            else OrderStatus.PARTIALLY_REFUNDED
        )
        order.updated_at = timezone.now()
        order.save(update_fields=["refunded_fen", "status", "updated_at"])
        audit(
            workspace=workspace,
            actor=actor,
            action="order.refund",
            obj=order,
            before=before,
            after={**snapshot(order), "amount_fen": amount_fen, "refund_id": refund_id},
        )
        if order.contact_id is not None:
            timeline_add(
                Contact(pk=order.contact_id, workspace_id=workspace.pk),
                "order_refunded",
                actor,
                order_id=order.external_id,
                amount=yuan(amount_fen),
                refunded=yuan(order.refunded_fen),
                total=yuan(order.total_fen),
                currency=order.currency,
            )
        aggregates.touch(workspace, [order.contact_id])
        return order, True


def move_orders_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    """Merge hook (TrackingConfig.ready): the others' orders move to their survivors."""
    sqlbulk.update_from_values(
        Order._meta.db_table,
        [("other", "int"), ("survivor", "int")],
        sorted(mapping.items()),
        "contact_id = v.survivor",
        key="contact_id",
    )


# --- from events -------------------------------------------------------------------------------


def apply_order_event(
    workspace: Workspace, actor: Actor, event: Any, contact_id: int | None, errors: list[str]
) -> None:
    """Called by the resolver for a resolved `track` event named `Order Completed` or
    `Order Refunded`. What cannot be applied (a malformed order, an unknown order id, an
    over-refund) is appended to `errors` (the event's `error`); it never raises for bad input,
    and what it did for this event is rolled back then."""
    props = event.properties if isinstance(event.properties, dict) else {}
    prefix = f"{event.event}: "
    try:
        with transaction.atomic():
            if event.event == ORDER_COMPLETED:
                _completed(workspace, actor, event, props, contact_id, errors, prefix)
            elif event.event == ORDER_REFUNDED:
                _refunded(workspace, actor, event, props, errors, prefix)
    except ValidationError as exc:
        errors.append(f"{prefix}properties.{exc.message} (not recorded)")
    except SiyuError as exc:
        errors.append(f"{prefix}{exc.message} (not recorded)")


def _completed(workspace, actor, event, props, contact_id, errors, prefix) -> None:
    if contact_id is None:
        errors.append(f"{prefix}no contact, order not recorded")
        return
    data = parse_order(props, workspace, id_key="order_id")
    existing = Order.objects.filter(workspace=workspace, external_id=data.external_id).first()
    if existing is not None:  # a duplicate order id is a no-op
        if not _same(existing, existing.contact_id, data):
            errors.append(f"{prefix}order {data.external_id} already exists, not changed")
        return
    data.placed_at = event.timestamp
    order_create(
        workspace=workspace,
        actor=actor,
        contact=Contact(pk=contact_id, workspace_id=workspace.pk),
        data=data,
        source=OrderSource.EVENT,
        message_id=event.message_id,
    )


def orders_from_events(
    workspace: Workspace, actor: Actor, entries: list[tuple[Any, int | None, list[str]]]
) -> None:
    """`Order Completed` events of a resolver batch, (event, contact id, errors) in event
    order, applied as `apply_order_event` would one by one, with a few statements for all:
    one query for the order ids that exist, one insert each for the new orders, their items,
    audit and timeline rows, and their contacts' aggregates added incrementally."""
    from siyu.contacts.models import TimelineEntry
    from siyu.core.models import AuditLog

    prefix = f"{ORDER_COMPLETED}: "
    wanted: list[tuple[Any, int, OrderInput, list[str]]] = []
    for event, contact_id, errors in entries:
        if contact_id is None:
            errors.append(f"{prefix}no contact, order not recorded")
            continue
        props = event.properties if isinstance(event.properties, dict) else {}
        try:
            data = parse_order(props, workspace, id_key="order_id")
        except ValidationError as exc:
            errors.append(f"{prefix}properties.{exc.message} (not recorded)")
            continue
        wanted.append((event, contact_id, data, errors))
    ids = sorted({data.external_id for _, _, data, _ in wanted})
    existing = {
        o.external_id: o
        for o in Order.objects.filter(workspace=workspace, external_id__in=ids).prefetch_related(
            "items"
        )
    }
    new: dict[str, tuple[Any, int, OrderInput]] = {}
    for event, contact_id, data, errors in wanted:
        if data.external_id in existing:  # a duplicate order id is a no-op
            if not _same(existing[data.external_id], existing[data.external_id].contact_id, data):
                errors.append(f"{prefix}order {data.external_id} already exists, not changed")
            continue
        if data.external_id in new:  # twice in this batch: the first wins
            if not _same_contents(new[data.external_id][2], data):
                errors.append(f"{prefix}order {data.external_id} already exists, not changed")
            continue
        data.placed_at = event.timestamp
        new[data.external_id] = (event, contact_id, data)
    if not new:
        return
    now = timezone.now()
    orders = [
        _unsaved_order(workspace, contact_id, data, OrderSource.EVENT, event.message_id, now)
        for event, contact_id, data in new.values()
    ]
    sqlbulk.insert_rows(Order, orders)
    sqlbulk.insert_rows(
        OrderItem,
        [
            item
            for order, (_, _, data) in zip(orders, new.values(), strict=True)
            for item in _unsaved_items(workspace, order, data)
        ],
    )
    # no ids back: inside a pipeline (a resolver batch) nothing waits for these
    sqlbulk.insert_plain(
        AuditLog,
        [
            {
                "workspace_id": workspace.pk,
                "actor_id": actor.user.pk if actor.user else None,
                "actor_label": actor.label,
                "action": "order.create",
                "object_type": "order",
                "object_id": str(order.pk),
                "after": snapshot(order),
                "ip": actor.ip,
                "created_at": now,
            }
            for order in orders
        ],
    )
    sqlbulk.insert_plain(
        TimelineEntry,
        [
            {
                "workspace_id": workspace.pk,
                "contact_id": order.contact_id,
                "kind": "order_placed",
                "data": _placed(order, data),
                "actor_label": actor.label,
                "created_at": now,
            }
            for order, (_, _, data) in zip(orders, new.values(), strict=True)
        ],
    )
    aggregates.add_orders(workspace, orders)


def _refunded(workspace, actor, event, props, errors, prefix) -> None:
    external_id = _text(props.get("order_id"), "order_id")
    if not external_id:
        raise ValidationError("order_id", "the order id is required")
    order = Order.objects.filter(workspace=workspace, external_id=external_id).first()
    if order is None:
        raise ValidationError("order_id", "no order %(id)s", params={"id": external_id})
    amount = None
    for key in ("total", "revenue"):
        if props.get(key) not in (None, ""):
            amount = parse_money(props[key], key)
            break
    refund_id = _text(props.get("refund_id"), "refund_id") or f"event:{event.message_id}"
    order_refund(
        workspace=workspace,
        actor=actor,
        order=order,
        amount_fen=amount,
        refund_id=refund_id,
        where="total",
    )

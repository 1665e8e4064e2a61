"""Orders API: POST /api/v1/orders (idempotent by the brand's order id), POST
/api/v1/orders/{external_id}/refund, GET /api/v1/contacts/{id}/orders (newest first, cursor
paged). Amounts go in as yuan (number or string) and are stored as integer fen."""

import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from siyu.accounts.permissions import is_own_only
from siyu.contacts.actions.identity import find_identity
from siyu.contacts.models import Contact, IdentityKind
from siyu.contacts.queries import get_contact_for, visible_contacts
from siyu.core.api import allowed
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, ValidationError
from siyu.core.models import Workspace
from siyu.core.paging import newest_first_page
from siyu.tracking.models import Order
from siyu.tracking.orders import order_create, order_refund, parse_money, parse_order, yuan

orders_router = Router(tags=["orders"])


class ProductIn(Schema):
    product_id: str = ""
    sku: str = ""
    name: str = ""
    category: str = ""
    price: Any = Field(None, description='yuan, a number or a string: 199.9 or "199.90"')
    quantity: Any = 1


class OrderIn(Schema):
    external_id: str = Field(..., min_length=1, max_length=255, description="the brand's id")
    contact_id: int | None = None
    user_id: str | None = None
    phone: str | None = None
    total: Any = Field(None, description="yuan, a number or a string")
    discount: Any = None
    shipping: Any = None
    tax: Any = None
    currency: str | None = None
    channel: str = ""
    placed_at: datetime.datetime | None = None
    products: list[ProductIn] = []


class RefundIn(Schema):
    amount: Any = Field(None, description="yuan; omitted: all that remains")
    refund_id: str = Field("", max_length=255, description="makes a retried refund a no-op")


class ItemOut(Schema):
    product_id: str
    sku: str
    name: str
    category: str
    price_fen: int
    quantity: int
    line_total_fen: int


class OrderOut(Schema):
    id: int
    external_id: str
    contact_id: int | None
    status: str
    currency: str
    total: str
    total_fen: int
    discount_fen: int
    shipping_fen: int
    tax_fen: int
    refunded_fen: int
    channel: str
    placed_at: datetime.datetime
    source: str
    message_id: str
    items: list[ItemOut]


class OrderList(Schema):
    items: list[OrderOut]
    next: str | None


def _out(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "external_id": order.external_id,
        "contact_id": order.contact_id,
        "status": order.status,
        "currency": order.currency,
        "total": yuan(order.total_fen),
        "total_fen": order.total_fen,
        "discount_fen": order.discount_fen,
        "shipping_fen": order.shipping_fen,
        "tax_fen": order.tax_fen,
        "refunded_fen": order.refunded_fen,
        "channel": order.channel,
        "placed_at": order.placed_at,
        "source": order.source,
        "message_id": order.message_id,
        "items": [
            {
                "product_id": i.product_id,
                "sku": i.sku,
                "name": i.name,
                "category": i.category,
                "price_fen": i.price_fen,
                "quantity": i.quantity,
                "line_total_fen": i.line_total_fen,
            }
            for i in sorted(order.items.all(), key=lambda i: i.pk)
        ],
    }


def _contact(workspace: Workspace, actor: Actor, payload: OrderIn) -> Contact:
    if payload.contact_id is not None:
        return get_contact_for(workspace, actor, payload.contact_id)
    for key, kind in (("user_id", IdentityKind.USER_ID), ("phone", IdentityKind.PHONE)):
        raw = getattr(payload, key)
        if not raw:
            continue
        try:
            identity = find_identity(workspace, kind, raw)
        except ValidationError as exc:
            raise ValidationError(key, "invalid %(kind)s", params={"kind": kind}) from exc
        contact = None
        if identity is not None:
            contact = visible_contacts(workspace, actor).filter(pk=identity.contact_id).first()
        if contact is None:  # unseen or not the actor's: the same answer
            raise ValidationError(key, "no contact has this %(kind)s", params={"kind": kind})
        return contact
    raise ValidationError("contact_id", "give contact_id, user_id or phone")


def _order_for(workspace: Workspace, actor: Actor, external_id: str) -> Order:
    order = Order.objects.filter(workspace=workspace, external_id=external_id).first()
    if order is not None and is_own_only(actor.role):
        visible = order.contact_id is not None and (
            visible_contacts(workspace, actor).filter(pk=order.contact_id).exists()
        )
        order = order if visible else None
    if order is None:
        raise NotFound("order not found")
    return order


@orders_router.post(
    "/orders", response={200: OrderOut, 201: OrderOut}, summary="Record an order (idempotent)"
)
def create_order(request: HttpRequest, payload: OrderIn):
    """201 with the new order; 200 with the existing one when the same order (same
    `external_id`, same contents) is posted again; 409 when the contents differ."""
    workspace, actor = allowed(request, "contacts.edit")
    contact = _contact(workspace, actor, payload)
    data = parse_order(payload.model_dump(), workspace)
    order, created = order_create(workspace=workspace, actor=actor, contact=contact, data=data)
    return Status(201 if created else 200, _out(order))


@orders_router.post("/orders/{external_id}/refund", response=OrderOut, summary="Refund an order")
def refund_order(request: HttpRequest, external_id: str, payload: RefundIn):
    """Refund `amount` yuan (all that remains when omitted). A repeated `refund_id` is a no-op."""
    workspace, actor = allowed(request, "contacts.edit")
    order = _order_for(workspace, actor, external_id)
    amount = None if payload.amount in (None, "") else parse_money(payload.amount, "amount")
    order, _ = order_refund(
        workspace=workspace,
        actor=actor,
        order=order,
        amount_fen=amount,
        refund_id=payload.refund_id.strip(),
    )
    return _out(order)


@orders_router.get(
    "/contacts/{contact_id}/orders", response=OrderList, summary="A contact's orders"
)
def contact_orders(request: HttpRequest, contact_id: int, cursor: str = "", limit: int = 50):
    """Newest first by `placed_at`, each with its items. Page with the returned `next`."""
    workspace, actor = allowed(request, "contacts.view")
    contact = get_contact_for(workspace, actor, contact_id)
    limit = max(1, min(limit, 200))
    qs = Order.objects.filter(workspace=workspace, contact=contact).prefetch_related("items")
    rows, next_cursor = newest_first_page(qs, "placed_at", cursor, limit)
    return {"items": [_out(o) for o in rows], "next": next_cursor}

"""Two lazily loaded cards on a contact's profile: the contact's latest orders (with totals
summed in SQL) and latest collected events. Both are read-only (`contacts.view`), scoped to the
workspace, and answer 404 for a contact the actor may not see (agents: only their own).
The profile page itself renders the "Activity summary" card from the aggregates
(`summary_context`), after the same access check.

Money is integer fen and is only ever formatted from integers (never a float). Events show
their type, name and the keys of their properties/traits, never the values: phones and emails
in events are sealed PII."""

from typing import Any

from django.db.models import Count, F, Prefetch, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws
from siyu.contacts.models import Contact
from siyu.contacts.queries import get_contact_for
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.tracking.models import Event, Order, OrderItem
from siyu.tracking.orders import yuan
from siyu.tracking.queries import contact_summary

ORDERS_SHOWN = 20
EVENTS_SHOWN = 30
ITEM_NAMES_SHOWN = 3
FIELD_KEYS_SHOWN = 6

SYMBOLS = {"CNY": "¥"}


def money(fen: int, currency: str = "CNY") -> str:
    """Integer fen as money text: 19990 -> "¥199.90" (other currencies: "USD 199.90")."""
    symbol = SYMBOLS.get(currency.upper())
    amount = yuan(int(fen))
    return f"{symbol}{amount}" if symbol else f"{currency.upper()} {amount}"


def summary_context(workspace: Workspace, contact: Contact) -> dict[str, Any]:
    """The "Activity summary" card: the contact's aggregates and a 30-day event chart. The
    caller has fetched `contact` through `get_contact_for` (access already checked)."""
    summary = contact_summary(workspace, contact)
    return {"summary": summary, "net_spend": money(summary.net_spend_fen, workspace.currency)}


def _order_row(order: Order) -> dict[str, Any]:
    items = list(order.items.all())
    names = [i.name for i in items if i.name]
    return {
        "order": order,
        "total": money(order.total_fen, order.currency),
        "refunded": money(order.refunded_fen, order.currency) if order.refunded_fen else "",
        "item_count": sum(i.quantity for i in items),
        "item_names": names[:ITEM_NAMES_SHOWN],
        "more_names": len(names) > ITEM_NAMES_SHOWN,
    }


@workspace_view("contacts.view")
def contact_orders(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    qs = Order.objects.filter(workspace=workspace, contact=contact)
    totals = qs.aggregate(
        count=Count("id"),
        net=Coalesce(Sum(F("total_fen") - F("refunded_fen")), 0),
    )
    orders = qs.order_by("-placed_at", "-id").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.filter(workspace=workspace).order_by("id"))
    )[:ORDERS_SHOWN]
    context = {
        "contact": contact,
        "orders": [_order_row(o) for o in orders],
        "order_count": totals["count"],
        "net_spent": money(totals["net"], workspace.currency),
    }
    return render_ws(request, "console/contacts/_orders.html", context)


def _keys(values: Any) -> list[str]:
    return sorted(str(k) for k in values) if isinstance(values, dict) else []


@workspace_view("contacts.view")
def contact_events(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    rows = list(
        Event.objects.filter(workspace=workspace)
        .of_contact(contact.pk)  # newest first through the resolutions' (contact, time) index
        .only("id", "type", "event", "properties", "traits", "timestamp")
        .order_by("-resolution__timestamp", "-id")[:EVENTS_SHOWN]
    )
    events = []
    for event in rows:
        # Only the keys: values may be sealed phones/emails and are never shown here.
        keys = list(dict.fromkeys(_keys(event.properties) + _keys(event.traits)))
        events.append(
            {
                "event": event,
                "keys": keys[:FIELD_KEYS_SHOWN],
                "more_keys": len(keys) > FIELD_KEYS_SHOWN,
            }
        )
    context = {"contact": contact, "events": events}
    return render_ws(request, "console/contacts/_events.html", context)

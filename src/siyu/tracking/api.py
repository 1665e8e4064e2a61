"""Read API of collected events: GET /api/v1/contacts/{id}/events (newest first, cursor
paged). Phones and emails inside events come back masked, like everywhere else."""

import datetime
from typing import Any

from django.db.models import F
from django.http import HttpRequest
from ninja import Router, Schema

from siyu.contacts.normalize import mask_email, mask_phone
from siyu.contacts.queries import get_contact_for
from siyu.core.api import allowed
from siyu.core.paging import newest_first_page
from siyu.tracking.models import Event
from siyu.tracking.pii import SEALED, unseal

events_router = Router(tags=["events"])


class EventOut(Schema):
    id: int
    type: str
    event: str
    properties: dict[str, Any]
    traits: dict[str, Any]
    timestamp: datetime.datetime
    received_at: datetime.datetime
    message_id: str


class EventList(Schema):
    items: list[EventOut]
    next: str | None


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    def one(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {SEALED}:
            clear = unseal(value)
            return mask_email(clear) if "@" in clear else mask_phone(clear)
        return value

    return {key: one(value) for key, value in values.items()}


@events_router.get(
    "/contacts/{contact_id}/events", response=EventList, summary="A contact's events"
)
def contact_events(request: HttpRequest, contact_id: int, cursor: str = "", limit: int = 50):
    """Newest first by event time. Page with the returned `next` cursor."""
    workspace, actor = allowed(request, "contacts.view")
    contact = get_contact_for(workspace, actor, contact_id)
    limit = max(1, min(limit, 200))
    # Paged by the resolution's copy of the event time: the (contact, timestamp) index of the
    # resolutions serves the order. Equal to the event's own, so cursors are unchanged.
    qs = (
        Event.objects.filter(workspace=workspace)
        .of_contact(contact.pk)
        .annotate(resolved_time=F("resolution__timestamp"))
    )
    rows, next_cursor = newest_first_page(qs, "resolved_time", cursor, limit)
    items = [
        {
            "id": e.pk,
            "type": e.type,
            "event": e.event,
            "properties": _masked(e.properties),
            "traits": _masked(e.traits),
            "timestamp": e.timestamp,
            "received_at": e.received_at,
            "message_id": e.message_id,
        }
        for e in rows
    ]
    return {"items": items, "next": next_cursor}

"""发送记录: every message of the outbox, newest first, filtered by status, channel and source,
paged by cursor; each with its contact, channel, status and reason in words and the masked
address. Also the "messages" card of a contact's profile: their last 20 messages."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws, to_int
from siyu.console.views.messaging_fields import (
    STATUS_BADGES,
    STATUS_LABELS,
    kind_label,
    reason_label,
    status_label,
)
from siyu.contacts.models import Contact
from siyu.contacts.queries import get_contact_for
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.core.paging import decode_cursor, encode_cursor
from siyu.messaging import queries
from siyu.messaging.models import ChannelConfig, OutboxMessage

PAGE_SIZE = 50
CONTACT_CARD_SIZE = 20


def message_rows(
    workspace: Workspace, messages: list[OutboxMessage], channels: dict[int, ChannelConfig]
) -> list[dict[str, Any]]:
    """Messages with their contact's name (one query; a deleted contact has none), channel
    and labels."""
    names = dict(
        Contact.objects.filter(
            workspace=workspace, pk__in={m.contact_id for m in messages}
        ).values_list("pk", "name")
    )
    rows = []
    for message in messages:
        channel = channels.get(message.channel_id)
        rows.append(
            {
                "message": message,
                "contact_name": names.get(message.contact_id),
                "contact_exists": message.contact_id in names,
                "channel": channel.name if channel else "",
                "channel_kind": kind_label(channel.kind) if channel else "",
                "status_label": status_label(message.status),
                "badge": STATUS_BADGES.get(message.status, ""),
                "reason_label": reason_label(message.reason),
            }
        )
    return rows


def _channels(workspace: Workspace) -> dict[int, ChannelConfig]:
    return {c.pk: c for c in ChannelConfig.objects.filter(workspace=workspace).order_by("name")}


@workspace_view("messaging.view")
@require_GET
def outbox(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    channels = _channels(workspace)
    status = request.GET.get("status", "")
    status = status if status in STATUS_LABELS else ""
    channel_id = to_int(request.GET.get("channel"))
    channel_id = channel_id if channel_id in channels else None
    source = request.GET.get("source", "").strip()[:120]
    qs = queries.outbox(workspace, actor, status=status, channel_id=channel_id, source=source)
    cursor, stale = request.GET.get("cursor", ""), False
    if cursor:
        try:
            (before,) = decode_cursor(cursor, 1)
            qs = qs.filter(pk__lt=before)
        except ValidationError:  # an edited or foreign link: the first page, said so
            cursor, stale = "", True
    page = list(qs[: PAGE_SIZE + 1])
    next_cursor = encode_cursor([page[PAGE_SIZE - 1].pk]) if len(page) > PAGE_SIZE else None
    filters = {"status": status, "channel": channel_id or "", "source": source}
    context = {
        "rows": message_rows(workspace, page[:PAGE_SIZE], channels),
        "channels": list(channels.values()),
        "statuses": [(value, str(label)) for value, label in STATUS_LABELS.items()],
        "filters": filters,
        "filtered": bool(status or channel_id or source),
        "cursor": cursor,
        "next_cursor": next_cursor,
        "stale": stale,
    }
    return render_ws(request, "console/messaging/outbox.html", context)


@workspace_view("messaging.view")
@require_GET
def contact_messages(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    """The profile's lazily loaded "messages" card (404 for a contact the actor may not see)."""
    contact = get_contact_for(workspace, actor, contact_id)
    latest = list(queries.outbox(workspace, actor, contact_id=contact.pk)[:CONTACT_CARD_SIZE])
    context = {"contact": contact, "rows": message_rows(workspace, latest, _channels(workspace))}
    return render_ws(request, "console/messaging/_contact_messages.html", context)

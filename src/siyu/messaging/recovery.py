"""After a sender died: what became of the messages it had marked `sending`?

Only the group in flight can be in that state (sender.py). For each, a channel whose vendor
drops repeated keys (`idempotent_resend`) simply sends again; otherwise the transport asks
the vendor (`lookup`, by the key we passed it); what the vendor surely lacks is sent again,
what it has is recorded, and what nobody can tell is marked failed (`outcome_unknown`) for
an operator to see, rather than risk a second message to a customer."""

import logging

import httpx
from django.db import transaction
from django.utils import timezone

from siyu.messaging.addresses import addresses_for
from siyu.messaging.channels.base import Outcome, Outgoing, SendResult, Transport, VendorError
from siyu.messaging.models import ChannelConfig, OutboxMessage, OutboxStatus
from siyu.messaging.outbox_writes import ANSWERED, write_messages

log = logging.getLogger(__name__)


def recover_interrupted(channel: ChannelConfig, transport: Transport) -> int:
    """Settle the channel's messages left `sending`; how many were settled. Call it holding
    the channel's lease (no live sender has any in flight then)."""
    stuck = list(OutboxMessage.objects.filter(channel=channel, status=OutboxStatus.SENDING))
    if not stuck:
        return 0
    now = timezone.now()
    addresses = addresses_for(
        channel.workspace_id,
        transport.address_identity,
        transport.address_app_id(),
        [m.contact_id for m in stuck],
    )
    settled = []
    for message in stuck:
        if transport.idempotent_resend:
            found = SendResult(message.key, Outcome.RETRY)
        else:
            address = addresses.get(message.contact_id, ("", ""))[0]
            outgoing = Outgoing(
                message.key,
                address,
                message.content or {},
                message.contact_id,
                ref=message.vendor_ref or message.key,
            )
            try:
                found = transport.lookup(outgoing, message.sent_at or message.created_at)
            except (VendorError, httpx.HTTPError) as exc:
                log.warning("lookup of %s failed, trying later: %s", message.key, exc)
                continue  # stays `sending`; the next sender asks again
        _settle(message, found, now)
        settled.append(message)
    with transaction.atomic():
        write_messages(settled, ANSWERED)
    return len(settled)


def _settle(message: OutboxMessage, found: SendResult | None, now) -> None:
    if found is None:
        message.status, message.reason = OutboxStatus.FAILED, "outcome_unknown"
        message.detail = "the sender stopped during the vendor call; the vendor cannot tell"
        message.sent_at, message.finished_at = None, now
    elif found.outcome == Outcome.SENT:
        message.status, message.reason = OutboxStatus.SENT, ""
        message.vendor_id = found.vendor_id or message.vendor_id
    elif found.outcome == Outcome.FAILED:
        message.status, message.reason = OutboxStatus.FAILED, f"vendor:{found.code}"[:120]
        message.detail = found.reason[:2000]
        message.sent_at, message.finished_at = None, now
    else:  # the vendor never got it: send it now
        message.status, message.reason = OutboxStatus.QUEUED, "resend_after_interruption"
        message.sent_at, message.due_at = None, now

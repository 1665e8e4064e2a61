"""Asking vendors what became of messages they accepted, for channels that report by being
asked rather than by calling back: a WeCom customer mass send is a task the staff member
confirms in the WeCom app, after which each customer's result (sent, not a friend, already
received a mass message today) can be read (`Transport.track`). The worker asks for each
recent task of the channel that still has messages without a final result."""

import datetime
import logging
import random

import httpx
from django.utils import timezone

from siyu.messaging.channels.base import VendorError
from siyu.messaging.inbound import apply_receipts
from siyu.messaging.models import ChannelConfig, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

# a task not confirmed within this long is no longer asked about
TRACK_DAYS = 30
TASKS_PER_RUN = 100


def poll_results(channel: ChannelConfig) -> int:
    """Apply the final results the vendor reports for the channel's sent messages; how many
    messages changed."""
    from siyu.messaging.sender import transport_for

    transport = transport_for(channel)
    if not hasattr(transport, "track"):
        return 0
    since = timezone.now() - datetime.timedelta(days=TRACK_DAYS)
    pending = set(
        OutboxMessage.objects.filter(channel=channel, status=OutboxStatus.SENT, sent_at__gte=since)
        .exclude(vendor_id="")
        .values_list("vendor_id", flat=True)
        .distinct()
    )
    # a different sample every run: tasks a staff member never confirms must not keep the
    # others from ever being asked about
    vendor_ids = random.sample(sorted(pending), min(len(pending), TASKS_PER_RUN))
    changed = 0
    for vendor_id in vendor_ids:
        try:
            receipts = transport.track(vendor_id)
        except (VendorError, httpx.HTTPError) as exc:
            log.warning("results of %s on channel %s: %s", vendor_id, channel.pk, exc)
            continue
        changed += apply_receipts(channel, transport, receipts)
    return changed


def channels_to_poll() -> list[int]:
    since = timezone.now() - datetime.timedelta(days=TRACK_DAYS)
    return list(
        ChannelConfig.objects.filter(
            enabled=True,
            kind="wecom",
            pk__in=OutboxMessage.objects.filter(
                status=OutboxStatus.SENT, sent_at__gte=since
            ).values("channel_id"),
        ).values_list("pk", flat=True)
    )

"""When senders run: right after messages are queued (on commit), and from the worker's
housekeeping for what became due later (quiet hours ended, a backoff passed) or was left by
a sender that died."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from siyu.messaging.models import ChannelConfig, OutboxMessage, OutboxStatus


def send_soon(channel_ids) -> None:
    """Start a sender for each channel once the current transaction commits."""
    from siyu.messaging.tasks import send_outbox

    for channel_id in sorted(set(channel_ids)):
        transaction.on_commit(lambda c=channel_id: send_outbox.enqueue(c))


def enqueue_polls() -> int:
    """Ask vendors that report by being asked (WeCom mass sends) for results, every so often."""
    from siyu.messaging.results import channels_to_poll
    from siyu.messaging.tasks import poll_vendor_results

    channel_ids = channels_to_poll()
    for channel_id in channel_ids:
        poll_vendor_results.enqueue(channel_id)
    return len(channel_ids)


def enqueue_due() -> int:
    """Start senders for channels with due or interrupted messages and no live sender; how
    many were started."""
    from siyu.messaging.tasks import send_outbox

    now = timezone.now()
    waiting = OutboxMessage.objects.filter(
        Q(status=OutboxStatus.QUEUED, due_at__lte=now) | Q(status=OutboxStatus.SENDING)
    )
    channel_ids = (
        ChannelConfig.objects.filter(enabled=True, pk__in=waiting.values("channel_id"))
        .filter(Q(send_lease_until__isnull=True) | Q(send_lease_until__lt=now))
        .values_list("pk", flat=True)
    )
    started = 0
    for channel_id in channel_ids:
        send_outbox.enqueue(channel_id)
        started += 1
    return started

"""Task entry points of the messaging app: take ids, call into the app, safe to run twice."""

from django_tasks import task


@task()
def send_outbox(channel_id: int) -> dict:
    """Send the channel's due messages (sender.py); a second copy returns at once."""
    from siyu.messaging.sender import send_channel

    tally = send_channel(channel_id)
    return {
        "sent": tally.sent,
        "failed": tally.failed,
        "suppressed": tally.suppressed,
        "retried": tally.retried,
        "waiting": tally.waiting,
        "recovered": tally.recovered,
    }


@task()
def poll_vendor_results(channel_id: int) -> dict:
    """Ask the vendor for the final results of the channel's sent messages (results.py)."""
    from siyu.messaging.models import ChannelConfig
    from siyu.messaging.results import poll_results

    channel = ChannelConfig.objects.filter(pk=channel_id, enabled=True).first()
    return {"changed": poll_results(channel) if channel else 0}

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

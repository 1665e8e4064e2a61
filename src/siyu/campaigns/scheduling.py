"""The worker's part in broadcasts: plan the runs that are due, and mark a broadcast done
once its last run's messages have all left."""

from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Concat
from django.utils import timezone

from siyu.campaigns.models import Broadcast, BroadcastStatus
from siyu.messaging.models import OutboxMessage, OutboxStatus


def plan_due() -> int:
    """Plan every scheduled run whose time has come; how many were planned."""
    from siyu.campaigns.actions import run_due

    due = Broadcast.objects.filter(
        status=BroadcastStatus.SCHEDULED, next_run_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    return sum(1 for broadcast_id in list(due) if run_due(broadcast_id) is not None)


def mark_done() -> int:
    """One-off broadcasts whose messages are all settled (none queued or sending) are done."""
    pending = OutboxMessage.objects.filter(
        workspace_id=OuterRef("workspace_id"),
        source__startswith=Concat(
            Value("broadcast:"), OuterRef("pk"), Value(":"), output_field=CharField()
        ),
        status__in=(OutboxStatus.QUEUED, OutboxStatus.SENDING),
    )
    return (
        Broadcast.objects.filter(status=BroadcastStatus.SENDING)
        .exclude(Exists(pending))
        .update(status=BroadcastStatus.DONE, updated_at=timezone.now())
    )


def journeys_live() -> bool:
    from siyu.campaigns.journey_models import Journey, JourneyStatus

    return Journey.objects.filter(status=JourneyStatus.ACTIVE).exists()

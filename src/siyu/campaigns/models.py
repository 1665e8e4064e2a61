"""Broadcasts: one message to a frozen audience, now, later or on a schedule, with a holdout.

A `Broadcast` says who (segments to include and exclude), what (a channel and a template),
when (now, at a time, or every day / week at a time) and how it is measured (a holdout share,
a goal event and an attribution window). Each time it goes out is a `BroadcastRun`: the
audience is frozen into `AudienceMember` rows (sent, held out, or suppressed with the
guardrail's reason) and the messages into the outbox, in SQL (planner.py)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core.models import WorkspaceScoped, unchecked_workspace


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Recurrence(models.TextChoices):
    NONE = "", _("Once")
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every week")


class Broadcast(WorkspaceScoped):
    name = models.CharField(max_length=120)
    status = models.CharField(
        max_length=12, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT
    )
    channel = models.ForeignKey(
        "messaging.ChannelConfig", on_delete=models.RESTRICT, related_name="+"
    )
    template = models.ForeignKey(
        "messaging.MessageTemplate", on_delete=models.RESTRICT, related_name="+"
    )
    include_segments = models.JSONField(default=list, blank=True)  # ids; empty: everyone
    exclude_segments = models.JSONField(default=list, blank=True)  # ids
    # share of the audience kept out and measured, by a stable hash of broadcast and contact
    holdout_percent = models.DecimalField(max_digits=4, decimal_places=1, default=0)
    # when the (next) run goes out; None for a draft or when sent now
    send_at = models.DateTimeField(null=True, blank=True)
    recurrence = models.CharField(max_length=10, choices=Recurrence.choices, blank=True)
    # ISO weekdays (1 = Monday) for weekly broadcasts
    weekdays = models.JSONField(default=list, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    goal_event = models.CharField(max_length=120, default="Order Completed")
    attribution_days = models.PositiveSmallIntegerField(default=3)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # the worker's scan for runs that are due
            models.Index(fields=["status", "next_run_at"], name="broadcast_due"),
        ]

    def __str__(self) -> str:
        return self.name


class BroadcastRun(WorkspaceScoped):
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    planned_at = models.DateTimeField(default=timezone.now)
    # the funnel at planning time: audience, after exclusions, holdout, each guardrail, queued
    counts = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "number"], name="broadcastrun_unique")
        ]

    @property
    def source(self) -> str:
        """The outbox source of this run's messages."""
        return f"broadcast:{self.broadcast_id}:{self.number}"


class AudienceGroup(models.TextChoices):
    SEND = "send", _("Sent")
    HOLDOUT = "holdout", _("Holdout")
    SUPPRESSED = "suppressed", _("Suppressed")


class AudienceMember(WorkspaceScoped):
    """One contact of a run's frozen audience: where the planner put them, and why."""

    workspace = unchecked_workspace()
    run = models.ForeignKey(
        BroadcastRun,
        on_delete=models.CASCADE,
        related_name="audience",
        db_index=False,
        db_constraint=False,
    )
    # indexed: merges and deletes of a contact find its rows
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    group = models.CharField(max_length=12, choices=AudienceGroup.choices)
    reason = models.CharField(max_length=60, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "contact"], name="audiencemember_unique")
        ]


# journeys live in their own module; importing them here registers them with Django
from siyu.campaigns.journey_models import (  # noqa: E402,F401
    EnrollmentStatus,
    Journey,
    JourneyEnrollment,
    JourneyStatus,
    JourneyStepStat,
    JourneyVersion,
)

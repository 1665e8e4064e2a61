"""Journeys: automated paths a contact walks, step by step, from a trigger.

A `Journey` holds its settings (entry rule, goal, holdout) and points at its live
`JourneyVersion`, an immutable graph: editing a live journey publishes a new version, and
contacts already inside keep walking the version they entered. A contact's walk is a
`JourneyEnrollment`: its current step and `wake_at`, the durable timer the worker moves in
batches (engine.py). Per-step counters are `JourneyStepStat` rows."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core.models import WorkspaceScoped, unchecked_workspace


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    ARCHIVED = "archived", _("Archived")


class Journey(WorkspaceScoped):
    name = models.CharField(max_length=120)
    status = models.CharField(
        max_length=10, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT
    )
    live_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # a contact enters once, or again once `reentry_days` passed since its last entry
    reentry_days = models.PositiveIntegerField(null=True, blank=True)
    # the goal event exits a contact (converted); also what the holdout is measured on
    goal_event = models.CharField(max_length=120, blank=True)
    attribution_days = models.PositiveSmallIntegerField(default=7)
    holdout_percent = models.DecimalField(max_digits=4, decimal_places=1, default=0)
    # where the trigger's signals were read up to (segment changes: the last change id)
    trigger_cursor = models.BigIntegerField(default=0)
    # date triggers: the next time the day's contacts are looked for
    next_date_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class JourneyVersion(WorkspaceScoped):
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journeyversion_unique")
        ]


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", _("In the journey")
    COMPLETED = "completed", _("Completed")
    CONVERTED = "converted", _("Reached the goal")
    HOLDOUT = "holdout", _("Holdout")
    EXITED = "exited", _("Exited")


class JourneyEnrollment(WorkspaceScoped):
    workspace = unchecked_workspace()
    # indexed by (journey, contact) below
    journey = models.ForeignKey(
        Journey,
        on_delete=models.CASCADE,
        related_name="enrollments",
        db_index=False,
        db_constraint=False,
    )
    version = models.ForeignKey(
        JourneyVersion,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    status = models.CharField(
        max_length=10, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE
    )
    step = models.CharField(max_length=40)
    # the durable timer: when the worker next looks at this contact (None: not waiting)
    wake_at = models.DateTimeField(null=True, blank=True)
    # inside a wait step (its timer is running) rather than about to run the step
    waiting = models.BooleanField(default=False)
    # a wait-for-event step: the event that moves it on before the timeout
    waiting_for = models.CharField(max_length=120, blank=True)
    entered_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # the worker's batches: a workspace's due timers
            models.Index(fields=["workspace", "status", "wake_at"], name="enrollment_due"),
            # entry rules and the goal / wait-for-event hooks
            models.Index(fields=["journey", "contact"], name="enrollment_journey_contact"),
        ]
        constraints = [
            # one walk at a time per contact and journey
            models.UniqueConstraint(
                fields=["journey", "contact"],
                condition=models.Q(status="active"),
                name="enrollment_one_active",
            )
        ]


class JourneyStepStat(WorkspaceScoped):
    """How many contacts a step of a version has seen (counted per batch)."""

    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="stats")
    step = models.CharField(max_length=40)
    entered = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "step"], name="journeystepstat_unique")
        ]

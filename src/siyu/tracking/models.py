"""Write keys (who may send events) and the raw events they send, as accepted by the
Segment-compatible collection API. See docs/tracking.md."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core.models import WorkspaceScoped


class WriteKey(WorkspaceScoped):
    """A key that may only *send* events into one workspace (the Segment "write key").
    It is embedded in web pages and apps, so it grants nothing else. Only a SHA-256 of the
    key is stored; the clear text is shown once, when it is created."""

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"], name="writekey_ws_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class MessageType(models.TextChoices):
    IDENTIFY = "identify", _("Identify")
    TRACK = "track", _("Track")
    PAGE = "page", _("Page")
    SCREEN = "screen", _("Screen")
    GROUP = "group", _("Group")
    ALIAS = "alias", _("Alias")


class EventStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSED = "processed", _("Processed")


class Event(WorkspaceScoped):
    """One accepted Segment message, stored as received (plus the corrected timestamp).
    `pending` until identity resolution (resolve.py) attaches it to a contact."""

    message_id = models.CharField(max_length=255)
    type = models.CharField(max_length=10, choices=MessageType.choices)
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    previous_id = models.CharField(max_length=255, blank=True, default="")  # alias
    group_id = models.CharField(max_length=255, blank=True, default="")  # group
    # The track event name, or the page / screen name.
    event = models.CharField(max_length=255, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # When it happened, corrected for the device's clock: originalTimestamp + (receivedAt - sentAt).
    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=EventStatus.choices, default=EventStatus.PENDING
    )
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    # What identity resolution could not use (an invalid phone, an attribute that failed the
    # schema, ...), one "field: reason" per line; never a clear phone number or email.
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "message_id"], name="event_message_unique")
        ]
        indexes = [
            # the processor takes pending events of a workspace in arrival order
            models.Index(fields=["workspace", "status", "id"], name="event_ws_status"),
            # the per-contact event list, newest first
            models.Index(fields=["contact", "-timestamp"], name="event_contact_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event or ''} {self.message_id}".strip()


class IngestState(WorkspaceScoped):
    """One row per workspace: the lease of the task draining its pending events. A drainer
    claims it with one atomic UPDATE (`running_until` empty or past), so only one runs per
    workspace at a time, on SQLite and PostgreSQL alike; a crashed drainer's lease expires."""

    running_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="ingeststate_unique")]

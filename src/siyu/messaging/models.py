"""Channels, templates and the outbox.

A `ChannelConfig` is one configured way out of a workspace (its SMTP server, its Aliyun SMS
account, its WeCom corp, …): non-secret settings in clear, credentials encrypted at rest. A
`MessageTemplate` says what to send on one kind of channel, in Jinja2 (templating.py). Every
message is an `OutboxMessage` row, keyed by an idempotency key, before any vendor is called
(outbox.py sends them)."""

import json
from typing import Any

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core import crypto
from siyu.core.models import WorkspaceScoped, unchecked_workspace


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS_ALIYUN = "sms_aliyun", _("Aliyun SMS")
    SMS_TENCENT = "sms_tencent", _("Tencent Cloud SMS")
    WECOM = "wecom", _("WeCom")
    WECHAT_OA = "wechat_oa", _("WeChat Official Account template message")
    WECHAT_MP = "wechat_mp", _("Mini program subscribe message")
    WEBHOOK = "webhook", _("Webhook")


class ChannelConfig(WorkspaceScoped):
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(max_length=60)
    settings = models.JSONField(default=dict, blank=True)
    # Fernet token of a JSON object; never shown again once saved (the console shows which
    # keys are set, not their values)
    secrets_enc = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    # messages per second this channel may send (the vendor's limit, or lower)
    rate_per_second = models.FloatField(default=10.0)
    # sending needs a granted consent (opt-in); otherwise everyone but who withdrew it
    consent_required = models.BooleanField(default=True)
    # one sender drains a channel at a time (outbox.py): who, and until when
    send_holder = models.CharField(max_length=80, blank=True)
    send_lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="channelconfig_name_unique")
        ]

    def __str__(self) -> str:
        return self.name

    def secrets(self) -> dict[str, Any]:
        return json.loads(crypto.decrypt(self.secrets_enc)) if self.secrets_enc else {}

    def set_secrets(self, values: dict[str, Any]) -> None:
        self.secrets_enc = crypto.encrypt(json.dumps(values)) if values else ""


class AccessToken(WorkspaceScoped):
    """A vendor access token (WeCom, WeChat), shared by every process and refreshed by one
    (tokens.py). `scope` tells tokens of one channel apart (an app's agent id, …)."""

    channel = models.ForeignKey(ChannelConfig, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=64, default="", blank=True)
    token_enc = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "scope"], name="accesstoken_unique")
        ]


class MessageTemplate(WorkspaceScoped):
    """What to send on one kind of channel: `content` holds the kind's fields (a subject and
    bodies for email, a vendor template code and its parameters for SMS, …), each a Jinja2
    template, validated when saved (templates.py)."""

    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(max_length=80)
    content = models.JSONField(default=dict)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="messagetemplate_unique")
        ]

    def __str__(self) -> str:
        return self.name


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")
    SUPPRESSED = "suppressed", _("Suppressed")


class OutboxMessage(WorkspaceScoped):
    """One message to one contact on one channel. The row exists (status queued) before any
    vendor is called; `key` (source step + contact + channel) is unique per workspace, so
    planning the same step twice adds nothing. A sender claims rows with a lease, marks them
    `sending` before the vendor call, and records the outcome after it (outbox.py)."""

    # Written in bulk (a million at a time by a broadcast): no database constraints, whose
    # deferred checks took a fifth of planning, and no single-column indexes that the
    # composite ones below already cover. Django still cascades and restricts deletes.
    workspace = unchecked_workspace()
    key = models.CharField(max_length=200)
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    channel = models.ForeignKey(
        ChannelConfig,
        on_delete=models.RESTRICT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    template = models.ForeignKey(
        MessageTemplate,
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # who planned it: "broadcast:12", "journey:3:send-1", "test", "api"
    source = models.CharField(max_length=120)
    status = models.CharField(
        max_length=12, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED
    )
    # a short code (no_consent, frequency_cap, template_error, vendor:isv.MOBILE_NUMBER_ILLEGAL, …)
    reason = models.CharField(max_length=120, blank=True)
    detail = models.TextField(blank=True)
    # what was sent, as rendered (no address: that is read from the identity when sending)
    content = models.JSONField(null=True, blank=True)
    address_masked = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # not before this time: quiet hours, backoff after a retryable failure, a schedule
    due_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    vendor_id = models.CharField(max_length=120, blank=True)
    # the reference we gave the vendor for the call (Outgoing.ref), for recovery after a crash
    vendor_ref = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="outbox_key_unique")
        ]
        indexes = [
            # the sender takes due messages of a channel in (due_at, id) order
            models.Index(fields=["channel", "status", "due_at", "id"], name="outbox_due"),
            # frequency caps and the contact's message history
            models.Index(fields=["contact", "created_at"], name="outbox_contact_time"),
            # reports per broadcast or journey step
            models.Index(fields=["workspace", "source", "status"], name="outbox_source"),
        ]


class ReachPolicy(WorkspaceScoped):
    """A workspace's guardrails (guardrails.py): frequency caps per contact, per channel kind
    and across all channels, over rolling windows, and quiet hours in the workspace's time
    zone, during which messages wait."""

    # {"all": {"day": 2, "week": 6}, "sms": {"day": 1, "week": 3}, …}: at most that many
    # messages per contact in the last 24 hours / 7 days; a missing entry has no cap
    caps = models.JSONField(default=dict, blank=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="reachpolicy_unique")]


class TrackedLink(WorkspaceScoped):
    """A URL a template linked with `{{ link("https://…") }}`: messages carry a short link on
    siyu's host (/l/<code>) that records the click and redirects here."""

    url = models.CharField(max_length=2000)
    url_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "url_hash"], name="trackedlink_unique")
        ]


class LinkClick(WorkspaceScoped):
    """One click on a message's short link (a preview's link has no message)."""

    link = models.ForeignKey(TrackedLink, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        OutboxMessage,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )
    clicked_at = models.DateTimeField(default=timezone.now)
    user_agent = models.CharField(max_length=300, blank=True)

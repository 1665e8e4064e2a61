"""API shapes for channels, templates, the reach policy and the outbox. Settings, secrets and
template content are objects whose fields depend on the channel kind (`GET
/api/v1/channels/kinds` lists them); actions.py checks them and names any bad field."""

import datetime
from dataclasses import asdict
from typing import Any

from ninja import Schema

from siyu.messaging.channels import REACH, transport_class
from siyu.messaging.models import ChannelConfig, MessageTemplate, OutboxMessage


class ChannelIn(Schema):
    kind: str
    name: str
    settings: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    rate_per_second: float | None = None
    consent_required: bool | None = None
    enabled: bool = True


class ChannelPatch(Schema):
    name: str | None = None
    settings: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None  # fields not given keep their stored value
    rate_per_second: float | None = None
    consent_required: bool | None = None
    enabled: bool | None = None


class ChannelOut(Schema):
    id: int
    kind: str
    reach: str
    name: str
    settings: dict[str, Any]
    secrets_set: list[str]  # which secrets are stored, never their values
    enabled: bool
    rate_per_second: float
    consent_required: bool
    receipt_url: str
    reply_url: str
    created_at: datetime.datetime


def channel_out(channel: ChannelConfig) -> dict[str, Any]:
    from siyu.messaging.inbound import hook_url

    return {
        "id": channel.pk,
        "kind": channel.kind,
        "reach": REACH[channel.kind],
        "name": channel.name,
        "settings": channel.settings,
        "secrets_set": sorted(channel.secrets()),
        "enabled": channel.enabled,
        "rate_per_second": channel.rate_per_second,
        "consent_required": channel.consent_required,
        "receipt_url": hook_url(channel, "receipts"),
        "reply_url": hook_url(channel, "replies"),
        "created_at": channel.created_at,
    }


def kind_out(kind: str) -> dict[str, Any]:
    cls = transport_class(kind)
    return {
        "kind": kind,
        "reach": REACH[kind],
        "max_batch": cls.max_batch,
        "default_rate": cls.default_rate,
        "settings": [asdict(f) for f in cls.settings_fields],
        "secrets": [asdict(f) for f in cls.secret_fields],
        "template": [asdict(f) for f in cls.template_fields],
    }


class TestIn(Schema):
    address: str
    template_id: int | None = None
    content: dict[str, Any] | None = None  # rendered content; or a template, rendered for a sample


class SendResultOut(Schema):
    outcome: str
    vendor_id: str
    code: str
    reason: str


class TemplateIn(Schema):
    kind: str
    name: str
    content: dict[str, Any]


class TemplatePatch(Schema):
    name: str | None = None
    content: dict[str, Any] | None = None
    archived: bool | None = None


class TemplateOut(Schema):
    id: int
    kind: str
    name: str
    content: dict[str, Any]
    archived: bool
    updated_at: datetime.datetime


def template_out(template: MessageTemplate) -> dict[str, Any]:
    return {
        "id": template.pk,
        "kind": template.kind,
        "name": template.name,
        "content": template.content,
        "archived": template.archived,
        "updated_at": template.updated_at,
    }


class PreviewIn(Schema):
    kind: str
    content: dict[str, Any]
    contact_id: int | None = None


class PolicyIn(Schema):
    caps: dict[str, dict[str, int]] = {}
    quiet_start: datetime.time | None = None
    quiet_end: datetime.time | None = None


class PolicyOut(Schema):
    caps: dict[str, dict[str, int]]
    quiet_start: datetime.time | None
    quiet_end: datetime.time | None
    timezone: str


class MessageOut(Schema):
    id: int
    key: str
    contact_id: int
    channel_id: int
    template_id: int | None
    source: str
    status: str
    reason: str
    detail: str
    address: str  # masked
    attempts: int
    due_at: datetime.datetime
    created_at: datetime.datetime
    sent_at: datetime.datetime | None
    finished_at: datetime.datetime | None


def message_out(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "key": message.key,
        "contact_id": message.contact_id,
        "channel_id": message.channel_id,
        "template_id": message.template_id,
        "source": message.source,
        "status": message.status,
        "reason": message.reason,
        "detail": message.detail,
        "address": message.address_masked,
        "attempts": message.attempts,
        "due_at": message.due_at,
        "created_at": message.created_at,
        "sent_at": message.sent_at,
        "finished_at": message.finished_at,
    }


class MessageList(Schema):
    items: list[MessageOut]
    next: str | None

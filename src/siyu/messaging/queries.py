"""Reads of messaging, scoped by workspace (and, for agents, by the contacts they own)."""

from django.db.models import QuerySet

from siyu.accounts.permissions import is_own_only
from siyu.core.errors import NotFound
from siyu.messaging.models import ChannelConfig, MessageTemplate, OutboxMessage


def get_channel_for(workspace, channel_id) -> ChannelConfig:
    channel = ChannelConfig.objects.filter(workspace=workspace, pk=channel_id).first()
    if channel is None:
        raise NotFound("no such channel")
    return channel


def get_template_for(workspace, template_id) -> MessageTemplate:
    template = MessageTemplate.objects.filter(workspace=workspace, pk=template_id).first()
    if template is None:
        raise NotFound("no such template")
    return template


def outbox(workspace, actor, **filters) -> QuerySet[OutboxMessage]:
    """Newest first; filters: source, status, contact_id, channel_id (empty ones ignored)."""
    qs = OutboxMessage.objects.filter(workspace=workspace)
    if is_own_only(actor.role):
        qs = qs.filter(contact__owner=actor.user)
    for name, value in filters.items():
        if value in (None, ""):
            continue
        if isinstance(value, int) and not 0 < value < 2**63:
            return qs.none()  # no row has such an id
        qs = qs.filter(**{name: value})
    return qs.order_by("-id")

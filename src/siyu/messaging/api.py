"""REST endpoints for channels, templates, the reach policy and the outbox (thin: parse,
authorise, call). docs/api.md lists them; docs/messaging.md explains the concepts."""

from django.http import HttpRequest
from ninja import Router, Status

from siyu.contacts.queries import get_contact_for
from siyu.core.api import allowed
from siyu.core.errors import ValidationError
from siyu.core.paging import decode_cursor, encode_cursor
from siyu.messaging import actions, guardrails, queries
from siyu.messaging.channels import TRANSPORTS
from siyu.messaging.schemas import (
    ChannelIn,
    ChannelOut,
    ChannelPatch,
    MessageList,
    PolicyIn,
    PolicyOut,
    PreviewIn,
    SendResultOut,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TestIn,
    channel_out,
    kind_out,
    message_out,
    template_out,
)

channels_router = Router(tags=["messaging"])
templates_router = Router(tags=["messaging"])
messaging_router = Router(tags=["messaging"])


@channels_router.get("/kinds", summary="Channel kinds and their fields")
def channel_kinds(request: HttpRequest):
    """Per kind: its settings, secrets and template fields (name, label, type, limits)."""
    allowed(request, "messaging.view")
    return [kind_out(kind) for kind in TRANSPORTS]


@channels_router.get("", response=list[ChannelOut], summary="List channels")
def list_channels(request: HttpRequest):
    workspace, _ = allowed(request, "messaging.view")
    return [channel_out(c) for c in workspace_channels(workspace)]


def workspace_channels(workspace):
    from siyu.messaging.models import ChannelConfig

    return ChannelConfig.objects.filter(workspace=workspace).order_by("name")


@channels_router.post("", response={201: ChannelOut}, summary="Configure a channel")
def create_channel(request: HttpRequest, payload: ChannelIn):
    """Secrets are encrypted at rest and never returned (only which are set)."""
    workspace, actor = allowed(request, "channels.manage")
    channel = actions.channel_create(workspace=workspace, actor=actor, **payload.dict())
    return Status(201, channel_out(channel))


@channels_router.get("/{channel_id}", response=ChannelOut, summary="One channel")
def get_channel(request: HttpRequest, channel_id: int):
    workspace, _ = allowed(request, "messaging.view")
    return channel_out(queries.get_channel_for(workspace, channel_id))


@channels_router.patch("/{channel_id}", response=ChannelOut, summary="Change a channel")
def update_channel(request: HttpRequest, channel_id: int, payload: ChannelPatch):
    workspace, actor = allowed(request, "channels.manage")
    channel = queries.get_channel_for(workspace, channel_id)
    changes = payload.dict(exclude_unset=True)
    channel = actions.channel_update(workspace=workspace, actor=actor, channel=channel, **changes)
    return channel_out(channel)


@channels_router.post("/{channel_id}/test", response=SendResultOut, summary="Send a test")
def test_channel(request: HttpRequest, channel_id: int, payload: TestIn):
    """Sends one message now to `address` (a phone, e-mail, openid, external_userid), with
    `content` as given or `template_id` rendered for a sample contact. Audited."""
    workspace, actor = allowed(request, "channels.manage")
    channel = queries.get_channel_for(workspace, channel_id)
    if payload.template_id is not None:
        template = queries.get_template_for(workspace, payload.template_id)
        content = actions.template_render(
            workspace=workspace, kind=channel.kind, content=template.content, contact=None
        )
    elif payload.content is not None:
        content = payload.content
    else:
        raise ValidationError("content", "give the content or a template_id")
    result = actions.channel_test(
        workspace=workspace, actor=actor, channel=channel, address=payload.address, content=content
    )
    return {
        "outcome": result.outcome,
        "vendor_id": result.vendor_id,
        "code": result.code,
        "reason": result.reason,
    }


@templates_router.get("", response=list[TemplateOut], summary="List templates")
def list_templates(request: HttpRequest, kind: str = "", archived: bool = False):
    workspace, _ = allowed(request, "messaging.view")
    from siyu.messaging.models import MessageTemplate

    qs = MessageTemplate.objects.filter(workspace=workspace, archived=archived)
    if kind:
        qs = qs.filter(kind=kind)
    return [template_out(t) for t in qs.order_by("name")]


@templates_router.post("", response={201: TemplateOut}, summary="Create a template")
def create_template(request: HttpRequest, payload: TemplateIn):
    """Every field is checked: syntax (with the line), unknown variables, required fields."""
    workspace, actor = allowed(request, "messaging.manage")
    template = actions.template_create(workspace=workspace, actor=actor, **payload.dict())
    return Status(201, template_out(template))


@templates_router.post("/preview", summary="Render a template for a contact")
def preview_template(request: HttpRequest, payload: PreviewIn):
    """The rendered fields for `contact_id` (or a sample contact), checked against the
    channel's limits; a template or limit error answers 422 naming the field."""
    workspace, actor = allowed(request, "messaging.view")
    contact = get_contact_for(workspace, actor, payload.contact_id) if payload.contact_id else None
    rendered = actions.template_render(
        workspace=workspace, kind=payload.kind, content=payload.content, contact=contact
    )
    return {"rendered": rendered}


@templates_router.get("/{template_id}", response=TemplateOut, summary="One template")
def get_template(request: HttpRequest, template_id: int):
    workspace, _ = allowed(request, "messaging.view")
    return template_out(queries.get_template_for(workspace, template_id))


@templates_router.patch("/{template_id}", response=TemplateOut, summary="Change a template")
def update_template(request: HttpRequest, template_id: int, payload: TemplatePatch):
    workspace, actor = allowed(request, "messaging.manage")
    template = queries.get_template_for(workspace, template_id)
    template = actions.template_update(
        workspace=workspace, actor=actor, template=template, **payload.dict(exclude_unset=True)
    )
    return template_out(template)


@messaging_router.get("/reach-policy", response=PolicyOut, summary="Frequency caps and quiet hours")
def get_policy(request: HttpRequest):
    workspace, _ = allowed(request, "messaging.view")
    policy = guardrails.policy_for(workspace)
    return {
        "caps": policy.caps,
        "quiet_start": policy.quiet_start,
        "quiet_end": policy.quiet_end,
        "timezone": workspace.timezone,
    }


@messaging_router.put("/reach-policy", response=PolicyOut, summary="Set caps and quiet hours")
def put_policy(request: HttpRequest, payload: PolicyIn):
    """`caps`: {"all" or a channel (sms, email, wecom, wechat, webhook): {"day": N, "week": N}}
    over rolling 24 hours / 7 days; quiet hours in the workspace's time zone, may wrap
    midnight (21:00–09:00)."""
    workspace, actor = allowed(request, "messaging.manage")
    actions.policy_update(workspace=workspace, actor=actor, **payload.dict())
    return get_policy(request)


@messaging_router.get("/outbox", response=MessageList, summary="Messages, newest first")
def list_outbox(
    request: HttpRequest,
    source: str = "",
    status: str = "",
    contact_id: int | None = None,
    channel_id: int | None = None,
    cursor: str = "",
    limit: int = 50,
):
    workspace, actor = allowed(request, "messaging.view")
    limit = max(1, min(limit, 200))
    qs = queries.outbox(
        workspace,
        actor,
        source=source,
        status=status,
        contact_id=contact_id,
        channel_id=channel_id,
    )
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        qs = qs.filter(pk__lt=after)
    rows = list(qs[: limit + 1])
    next_cursor = encode_cursor([rows[limit - 1].pk]) if len(rows) > limit else None
    return {"items": [message_out(m) for m in rows[:limit]], "next": next_cursor}

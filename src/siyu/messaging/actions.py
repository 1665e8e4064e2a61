"""Every write to messaging: channels, templates, the reach policy, queuing messages and test
sends."""

import datetime
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.core import sqlbulk
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import Workspace
from siyu.messaging import guardrails
from siyu.messaging.channels import TRANSPORTS, transport_class
from siyu.messaging.channels.base import FieldSpec, Outgoing, SendResult
from siyu.messaging.content import clean_content, render_content
from siyu.messaging.links import LinkMaker
from siyu.messaging.models import ChannelConfig, MessageTemplate, OutboxMessage, ReachPolicy
from siyu.messaging.scheduling import send_soon
from siyu.messaging.templating import contact_context
from siyu.messaging.tokens import forget_cached

# WeCom customers added an advisor and WeChat users subscribed: reaching them there is what
# they agreed to. E-mail and SMS marketing need an explicit opt-in by default.
CONSENT_REQUIRED_BY_DEFAULT = {"email", "sms_aliyun", "sms_tencent"}


def _clean_kind(kind: Any) -> str:
    if kind not in TRANSPORTS:
        raise ValidationError(
            "kind", "expected one of %(choices)s", params={"choices": ", ".join(TRANSPORTS)}
        )
    return kind


def _clean_name(model, workspace: Workspace, name: Any, exclude: int | None = None) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationError("name", "must not be empty")
    limit = model._meta.get_field("name").max_length
    if len(name) > limit:
        raise ValidationError("name", "longer than %(n)s characters", {"n": limit})
    if model.objects.filter(workspace=workspace, name=name).exclude(pk=exclude).exists():
        raise Conflict(
            "the name %(name)s is taken", details={"field": "name"}, params={"name": name}
        )
    return name


def _clean_fields(
    specs: tuple[FieldSpec, ...], values: Any, prefix: str, keep: dict | None = None
) -> dict[str, Any]:
    """Settings or secrets checked against the kind's fields. With `keep` (an update), a
    field not given keeps its stored value: secrets are never shown, so never re-entered."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValidationError(prefix, "expected an object")
    by_name = {spec.name: spec for spec in specs}
    for name in values:
        if name not in by_name:
            raise ValidationError(
                f"{prefix}.{name}",
                "unknown field; expected one of %(choices)s",
                params={"choices": ", ".join(by_name) or "none"},
            )
    cleaned: dict[str, Any] = {}
    for name, spec in by_name.items():
        path = f"{prefix}.{name}"
        if name in values:
            value = values[name]
        elif keep is not None and name in keep:
            value = keep[name]
        else:
            value = spec.default
        if value in (None, ""):
            if spec.required:
                raise ValidationError(path, "this field is required")
            continue
        cleaned[name] = _clean_field_value(spec, path, value)
    return cleaned


def _clean_field_value(spec: FieldSpec, path: str, value: Any) -> Any:
    if spec.kind == "int":
        if isinstance(value, bool):
            raise ValidationError(path, "expected a whole number")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValidationError(path, "expected a whole number") from None
    if spec.kind == "bool":
        if isinstance(value, str):
            return value.lower() in {"1", "true", "on", "yes"}
        return bool(value)
    if not isinstance(value, str):
        raise ValidationError(path, "expected text")
    value = value.strip()
    if spec.choices and value not in spec.choices:
        raise ValidationError(
            path, "expected one of %(choices)s", params={"choices": ", ".join(spec.choices)}
        )
    if len(value) > 2000:
        raise ValidationError(path, "longer than 2000 characters")
    return value


def _check_settings(transport, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        transport.validate_settings(settings)
    except ValidationError as exc:
        raise ValidationError(f"settings.{exc.field}", exc.template, exc.params) from exc
    return settings


def _clean_rate(rate: Any) -> float:
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise ValidationError("rate_per_second", "expected a number") from None
    if not 0.01 <= rate <= 10_000:
        raise ValidationError("rate_per_second", "expected a number from 0.01 to 10000")
    return rate


def _channel_snapshot(channel: ChannelConfig) -> dict:
    return {
        "kind": channel.kind,
        "name": channel.name,
        "settings": channel.settings,
        "secrets_set": sorted(channel.secrets()),  # which, never their values
        "enabled": channel.enabled,
        "rate_per_second": channel.rate_per_second,
        "consent_required": channel.consent_required,
    }


def channel_create(
    *,
    workspace: Workspace,
    actor: Actor,
    kind: str,
    name: str,
    settings: dict | None = None,
    secrets: dict | None = None,
    rate_per_second: float | None = None,
    consent_required: bool | None = None,
    enabled: bool = True,
) -> ChannelConfig:
    kind = _clean_kind(kind)
    transport = transport_class(kind)
    with transaction.atomic():
        channel = ChannelConfig(
            workspace=workspace,
            kind=kind,
            name=_clean_name(ChannelConfig, workspace, name),
            settings=_check_settings(
                transport, _clean_fields(transport.settings_fields, settings, "settings")
            ),
            rate_per_second=_clean_rate(
                transport.default_rate if rate_per_second is None else rate_per_second
            ),
            consent_required=(
                kind in CONSENT_REQUIRED_BY_DEFAULT
                if consent_required is None
                else bool(consent_required)
            ),
            enabled=bool(enabled),
            created_by=actor.user,
        )
        channel.set_secrets(_clean_fields(transport.secret_fields, secrets, "secrets"))
        channel.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="channel.create",
            obj=channel,
            after=_channel_snapshot(channel),
        )
    return channel


def channel_update(
    *, workspace: Workspace, actor: Actor, channel: ChannelConfig, **changes: Any
) -> ChannelConfig:
    """Change any of name, settings, secrets (fields not given keep their value),
    rate_per_second, consent_required, enabled."""
    transport = transport_class(channel.kind)
    allowed = {"name", "settings", "secrets", "rate_per_second", "consent_required", "enabled"}
    for key in changes:
        if key not in allowed:
            raise ValidationError(key, "cannot be changed")
    with transaction.atomic():
        channel = ChannelConfig.objects.select_for_update().get(pk=channel.pk, workspace=workspace)
        before = _channel_snapshot(channel)
        if "name" in changes:
            channel.name = _clean_name(ChannelConfig, workspace, changes["name"], channel.pk)
        if "settings" in changes:
            channel.settings = _check_settings(
                transport,
                _clean_fields(
                    transport.settings_fields,
                    changes["settings"],
                    "settings",
                    keep=channel.settings,
                ),
            )
        if "secrets" in changes:
            channel.set_secrets(
                _clean_fields(
                    transport.secret_fields, changes["secrets"], "secrets", keep=channel.secrets()
                )
            )
        if "rate_per_second" in changes:
            channel.rate_per_second = _clean_rate(changes["rate_per_second"])
        for flag in ("consent_required", "enabled"):
            if flag in changes:
                setattr(channel, flag, bool(changes[flag]))
        channel.updated_at = timezone.now()
        channel.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="channel.update",
            obj=channel,
            before=before,
            after=_channel_snapshot(channel),
        )
    forget_cached(channel.pk)  # new credentials: tokens fetched with the old ones go
    return channel


def template_create(
    *, workspace: Workspace, actor: Actor, kind: str, name: str, content: Any
) -> MessageTemplate:
    kind = _clean_kind(kind)
    with transaction.atomic():
        template = MessageTemplate.objects.create(
            workspace=workspace,
            kind=kind,
            name=_clean_name(MessageTemplate, workspace, name),
            content=clean_content(kind, content),
        )
        audit(
            workspace=workspace,
            actor=actor,
            action="template.create",
            obj=template,
            after={"kind": kind, "name": template.name, "content": template.content},
        )
    return template


def template_update(
    *,
    workspace: Workspace,
    actor: Actor,
    template: MessageTemplate,
    name: str | None = None,
    content: Any = None,
    archived: bool | None = None,
) -> MessageTemplate:
    with transaction.atomic():
        template = MessageTemplate.objects.select_for_update().get(
            pk=template.pk, workspace=workspace
        )
        before = {"name": template.name, "content": template.content, "archived": template.archived}
        if name is not None:
            template.name = _clean_name(MessageTemplate, workspace, name, template.pk)
        if content is not None:
            template.content = clean_content(template.kind, content)
        if archived is not None:
            template.archived = bool(archived)
        template.updated_at = timezone.now()
        template.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="template.update",
            obj=template,
            before=before,
            after={
                "name": template.name,
                "content": template.content,
                "archived": template.archived,
            },
        )
    return template


def template_render(
    *, workspace: Workspace, kind: str, content: Any, contact: Contact | None
) -> dict[str, Any]:
    """What the template gives for this contact (a sample contact when None), checked
    against the channel's limits: the preview beside the editor. Raises the template's or
    the limit's error."""
    kind = _clean_kind(kind)
    cleaned = clean_content(kind, content)
    sample = contact or Contact(workspace=workspace, name="王小明", city="上海", attributes={})
    context = {
        **contact_context(sample, workspace=workspace),
        "link": LinkMaker(workspace.pk, preview=True),
    }
    rendered = render_content(kind, cleaned, context)
    transport = transport_class(kind)({}, {})
    transport.check_content(rendered)
    return rendered


def policy_update(
    *,
    workspace: Workspace,
    actor: Actor,
    caps: Any = None,
    quiet_start: datetime.time | None = None,
    quiet_end: datetime.time | None = None,
) -> ReachPolicy:
    """Frequency caps and quiet hours (both given, or both None for none)."""
    if (quiet_start is None) != (quiet_end is None):
        raise ValidationError("quiet_end", "give both the start and the end of quiet hours")
    with transaction.atomic():
        policy, _ = ReachPolicy.objects.select_for_update().get_or_create(workspace=workspace)
        before = {"caps": policy.caps, "quiet": [str(policy.quiet_start), str(policy.quiet_end)]}
        policy.caps = guardrails.clean_caps(caps if caps is not None else {})
        policy.quiet_start, policy.quiet_end = quiet_start, quiet_end
        policy.updated_at = timezone.now()
        policy.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="reach_policy.update",
            obj=policy,
            before=before,
            after={"caps": policy.caps, "quiet": [str(quiet_start), str(quiet_end)]},
        )
    return policy


def outbox_enqueue(
    *,
    workspace: Workspace,
    channel: ChannelConfig,
    template: MessageTemplate,
    source: str,
    contact_ids: Iterable[int],
    due_at: datetime.datetime | None = None,
) -> int:
    """Queue one message per contact (contact ids already scoped to the workspace by the
    caller); a key already queued adds nothing. How many were added."""
    if template.kind != channel.kind:
        raise ValidationError(
            "template",
            "a %(kind)s template cannot be sent on this channel",
            {"kind": template.kind},
        )
    now = timezone.now()
    rows = [
        OutboxMessage(
            workspace_id=workspace.pk,
            key=outbox_key(source, contact_id, channel.kind),
            contact_id=contact_id,
            channel_id=channel.pk,
            template_id=template.pk,
            source=source,
            due_at=due_at or now,
            created_at=now,
        )
        for contact_id in sorted(set(contact_ids))
    ]
    with transaction.atomic():
        before = OutboxMessage.objects.filter(workspace=workspace, source=source).count()
        sqlbulk.insert_rows(OutboxMessage, rows, ignore_conflicts=True)
        added = OutboxMessage.objects.filter(workspace=workspace, source=source).count() - before
        send_soon([channel.pk])
    return added


def outbox_key(source: str, contact_id: int, channel_kind: str) -> str:
    return f"{source}:{contact_id}:{channel_kind}"


def channel_test(
    *,
    workspace: Workspace,
    actor: Actor,
    channel: ChannelConfig,
    address: str,
    content: dict[str, Any],
) -> SendResult:
    """Send one message to an address the operator typed (their own phone or inbox), now,
    outside the outbox (it is not a customer message), and audit it."""
    from siyu.messaging.sender import call_transport, transport_for

    transport = transport_for(channel)
    transport.check_content(content)
    key = f"test:{channel.pk}:{timezone.now().timestamp():.6f}"
    result = call_transport(transport, [Outgoing(key, address.strip(), content)])[0]
    audit(
        workspace=workspace,
        actor=actor,
        action="channel.test",
        obj=channel,
        after={"outcome": result.outcome, "code": result.code, "reason": result.reason[:200]},
    )
    return result


def move_messages_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    """Merge hook: a merged-away contact's messages become its survivor's, so that frequency
    caps and the message history count them (their keys keep the old contact id: a step
    planned again for the survivor is a new message only if it was never sent to either)."""
    sqlbulk.update_from_values(
        OutboxMessage._meta.db_table,
        [("other", "int"), ("survivor", "int")],
        sorted(mapping.items()),
        "contact_id = v.survivor",
        key="contact_id",
    )

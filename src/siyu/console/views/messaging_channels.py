"""渠道: the workspace's channels; adding one (pick a kind, then a form generated from the
kind's settings and secrets); one channel's page with its settings, the callback URLs to give
the vendor and a test send. Secrets are never shown: their inputs stay empty, and an empty
one keeps what is stored."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from siyu.console.access import workspace_view
from siyu.console.helpers import is_partial, render_ws, to_int
from siyu.console.views.messaging_fields import (
    field_label,
    field_rows,
    kind_cards,
    kind_label,
    place_error,
    read_fields,
)
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, SiyuError, ValidationError
from siyu.core.models import Workspace
from siyu.messaging import actions, queries
from siyu.messaging.channels import TRANSPORTS, transport_class
from siyu.messaging.channels.base import Outcome, SendResult
from siyu.messaging.models import ChannelConfig, MessageTemplate
from siyu.messaging.schemas import channel_out

FLAGS = ("enabled", "consent_required")


def channel_row(channel: ChannelConfig) -> dict[str, Any]:
    """What the list and the page show of a channel: which secrets are set, never values."""
    out = channel_out(channel)
    secrets = transport_class(channel.kind).secret_fields
    out["kind_label"] = kind_label(channel.kind)
    out["secrets"] = [
        {"label": field_label(spec), "is_set": spec.name in out["secrets_set"]} for spec in secrets
    ]
    return out


@workspace_view("messaging.view")
@require_GET
def channel_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    channels = ChannelConfig.objects.filter(workspace=workspace).order_by("name")
    context = {"rows": [channel_row(c) for c in channels]}
    return render_ws(request, "console/messaging/channels.html", context)


# --- the form -----------------------------------------------------------------------------


def _form_slots(kind: str) -> set[str]:
    transport = transport_class(kind)
    names = {"name", "rate_per_second", *FLAGS}
    names |= {f"settings.{s.name}" for s in transport.settings_fields}
    return names | {f"secrets.{s.name}" for s in transport.secret_fields}


def _form(kind: str, values: dict[str, Any], errors: dict[str, str], secrets_set=()) -> dict:
    transport = transport_class(kind)
    return {
        "kind": kind,
        "kind_label": kind_label(kind),
        "name": values.get("name", ""),
        "rate_per_second": values.get("rate_per_second", transport.default_rate),
        "default_rate": transport.default_rate,
        "enabled": values.get("enabled", True),
        "consent_required": values.get("consent_required"),
        "has_consent": transport.consent_channel is not None,
        "settings": field_rows(
            transport.settings_fields, "settings", values.get("settings", {}), errors
        ),
        "secrets": field_rows(
            transport.secret_fields,
            "secrets",
            {},
            errors,
            secret=True,
            secrets_set=secrets_set,
        ),
        "errors": errors,
    }


def _posted(kind: str, post) -> dict[str, Any]:
    transport = transport_class(kind)
    return {
        "name": post.get("name", "").strip(),
        "rate_per_second": post.get("rate_per_second", "").strip(),
        "enabled": post.get("enabled") == "1",
        "consent_required": post.get("consent_required") == "1",
        "settings": read_fields(transport.settings_fields, "settings", post),
    }


def _posted_secrets(kind: str, post) -> dict[str, str]:
    """Secrets typed in; a ticked "clear" empties an optional one. Left empty: not sent, so
    the stored value stays."""
    secrets = {}
    for spec in transport_class(kind).secret_fields:
        typed = post.get(f"secrets.{spec.name}", "").strip()
        if typed:
            secrets[spec.name] = typed
        elif post.get(f"secrets_clear.{spec.name}") == "1" and not spec.required:
            secrets[spec.name] = ""
    return secrets


@workspace_view("channels.manage")
@require_http_methods(["GET", "POST"])
def channel_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    kind = request.POST.get("kind") or request.GET.get("kind", "")
    if kind not in TRANSPORTS:
        context = {"cards": kind_cards(), "purpose": "channel"}
        return render_ws(request, "console/messaging/kinds.html", context)
    if request.method != "POST":
        values = {"consent_required": kind in actions.CONSENT_REQUIRED_BY_DEFAULT}
        return _new_page(request, _form(kind, values, {}))
    values = _posted(kind, request.POST)
    transport = transport_class(kind)
    try:
        channel = actions.channel_create(
            workspace=workspace,
            actor=actor,
            kind=kind,
            name=values["name"],
            settings=values["settings"],
            secrets=_posted_secrets(kind, request.POST),
            rate_per_second=values["rate_per_second"] or None,
            consent_required=values["consent_required"] if transport.consent_channel else None,
            enabled=values["enabled"],
        )
    except SiyuError as exc:
        errors = place_error(exc, _form_slots(kind))
        return _new_page(request, _form(kind, values, errors), status=exc.status)
    messages.success(request, _("Channel %(name)s added.") % {"name": channel.name})
    return redirect("console:channel", workspace.slug, channel.pk)


def _new_page(request: HttpRequest, form: dict, status: int = 200) -> HttpResponse:
    context = {"form": form, "channel": None}
    return render_ws(request, "console/messaging/channel_form.html", context, status=status)


# --- one channel --------------------------------------------------------------------------


def _test_templates(workspace: Workspace, kind: str) -> list[MessageTemplate]:
    qs = MessageTemplate.objects.filter(workspace=workspace, kind=kind, archived=False)
    return list(qs.order_by("name"))


def _page(
    request: HttpRequest,
    workspace: Workspace,
    channel: ChannelConfig,
    form: dict | None = None,
    test: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    if form is None:
        values = {
            "name": channel.name,
            "rate_per_second": channel.rate_per_second,
            "enabled": channel.enabled,
            "consent_required": channel.consent_required,
            "settings": channel.settings,
        }
        form = _form(channel.kind, values, {}, channel.secrets())
    context = {
        "channel": channel_row(channel),
        "form": form,
        "templates": _test_templates(workspace, channel.kind),
        "test": test or {},
    }
    return render_ws(request, "console/messaging/channel_form.html", context, status=status)


@workspace_view("messaging.view")
@require_GET
def channel_detail(
    request: HttpRequest, workspace: Workspace, actor: Actor, channel_id: int
) -> HttpResponse:
    return _page(request, workspace, queries.get_channel_for(workspace, channel_id))


@workspace_view("channels.manage")
@require_POST
def channel_save(
    request: HttpRequest, workspace: Workspace, actor: Actor, channel_id: int
) -> HttpResponse:
    channel = queries.get_channel_for(workspace, channel_id)
    values = _posted(channel.kind, request.POST)
    changes: dict[str, Any] = {
        "name": values["name"],
        "settings": values["settings"],
        "secrets": _posted_secrets(channel.kind, request.POST),
        "rate_per_second": values["rate_per_second"],
        "enabled": values["enabled"],
    }
    if transport_class(channel.kind).consent_channel:
        changes["consent_required"] = values["consent_required"]
    try:
        channel = actions.channel_update(
            workspace=workspace, actor=actor, channel=channel, **changes
        )
    except SiyuError as exc:
        errors = place_error(exc, _form_slots(channel.kind))
        form = _form(channel.kind, values, errors, channel.secrets())
        return _page(request, workspace, channel, form=form, status=exc.status)
    messages.success(request, _("Channel %(name)s saved.") % {"name": channel.name})
    return redirect("console:channel", workspace.slug, channel.pk)


# --- a test send --------------------------------------------------------------------------


def _outcome(result: SendResult) -> dict[str, Any]:
    labels = {
        Outcome.SENT: _("Sent: the channel accepted it"),
        Outcome.FAILED: _("Not sent"),
        Outcome.RETRY: _("Failed for now (the channel may accept a later try)"),
    }
    return {
        "outcome": result.outcome,
        "label": labels.get(result.outcome, result.outcome),
        "vendor_id": result.vendor_id,
        "code": result.code,
        "reason": result.reason,
    }


@workspace_view("channels.manage")
@require_POST
def channel_test(
    request: HttpRequest, workspace: Workspace, actor: Actor, channel_id: int
) -> HttpResponse:
    """Render the chosen template for a sample contact and send it to the typed address now
    (audited by the action); the outcome, or the error beside its field."""
    channel = queries.get_channel_for(workspace, channel_id)
    address = request.POST.get("address", "").strip()
    template_id = to_int(request.POST.get("template_id"))
    test: dict[str, Any] = {"address": address, "template_id": template_id}
    status = 200
    try:
        if not address:
            raise ValidationError("address", "this field is required")
        if template_id is None:
            raise ValidationError("template_id", "this field is required")
        try:
            template = queries.get_template_for(workspace, template_id)
        except NotFound:
            raise ValidationError("template_id", "no such template") from None
        if template.kind != channel.kind:
            raise ValidationError(
                "template_id",
                "a %(kind)s template cannot be sent on this channel",
                {"kind": template.kind},
            )
        content = actions.template_render(
            workspace=workspace, kind=channel.kind, content=template.content, contact=None
        )
        result = actions.channel_test(
            workspace=workspace, actor=actor, channel=channel, address=address, content=content
        )
        test["result"] = _outcome(result)
    except SiyuError as exc:
        test["errors"] = place_error(exc, {"address", "template_id"})
        status = exc.status
    if is_partial(request, "channel-test"):
        context = {"channel": channel_row(channel), "test": test}
        context["templates"] = _test_templates(workspace, channel.kind)
        return render_ws(request, "console/messaging/_channel_test.html", context, status=status)
    return _page(request, workspace, channel, test=test, status=status)

"""消息模板: templates by channel kind, and the editor: inputs generated from the kind's
template fields beside a live preview. htmx posts the whole form to the preview on every
change; the partial shows the fields rendered for a sample or chosen contact (for SMS with
the length and billing segments), and swaps each field's error slot out of band so an error
shows beside the field it is about. Save, archive and restore."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws, to_int
from siyu.console.views.messaging_fields import (
    field_label,
    field_rows,
    input_kind,
    kind_cards,
    kind_label,
    place_error,
    read_content,
    typed_content,
)
from siyu.contacts.queries import ContactFilter, get_contact_for, visible_contacts
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, SiyuError
from siyu.core.models import Workspace
from siyu.messaging import actions, queries
from siyu.messaging.channels import TRANSPORTS, transport_class
from siyu.messaging.channels.sms_aliyun.transport import fill_placeholders as aliyun_text
from siyu.messaging.channels.sms_tencent.transport import fill_placeholders as tencent_text
from siyu.messaging.limits import SMS_MAX_SEGMENTS, sms_length
from siyu.messaging.models import ChannelConfig, MessageTemplate

CONTACT_CHOICES = 20
# how an SMS kind turns its text and parameters into what the recipient reads
SMS_TEXT = {"sms_aliyun": (aliyun_text, dict), "sms_tencent": (tencent_text, list)}
# characters in one segment, and per segment of a longer message (limits.py)
SMS_SEGMENT_SIZES = {"gsm7": (160, 153), "ucs2": (70, 67)}


# --- the list -----------------------------------------------------------------------------


@workspace_view("messaging.view")
@require_GET
def template_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    tab = "archived" if request.GET.get("tab") == "archived" else "active"
    kind = request.GET.get("kind", "")
    kind = kind if kind in TRANSPORTS else ""
    every = MessageTemplate.objects.filter(workspace=workspace)
    shown = every.filter(archived=tab == "archived")
    if kind:
        shown = shown.filter(kind=kind)
    by_kind: dict[str, list[MessageTemplate]] = {}
    for template in shown.order_by("name"):
        by_kind.setdefault(template.kind, []).append(template)
    groups = [
        {"kind": k, "label": kind_label(k), "templates": by_kind[k]}
        for k in TRANSPORTS
        if k in by_kind
    ]
    context = {
        "tab": tab,
        "kind": kind,
        "groups": groups,
        "active_count": every.filter(archived=False).count(),
        "archived_count": every.filter(archived=True).count(),
        "cards": kind_cards(),
    }
    return render_ws(request, "console/messaging/templates.html", context)


# --- the editor ---------------------------------------------------------------------------


def _slots(kind: str) -> set[str]:
    return {"name", *(f"content.{s.name}" for s in transport_class(kind).template_fields)}


def _editor(
    request: HttpRequest,
    kind: str,
    template: MessageTemplate | None,
    name: str,
    content: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    specs = transport_class(kind).template_fields
    context = {
        "kind": kind,
        "kind_label": kind_label(kind),
        "template": template,
        "name": name,
        "rows": field_rows(specs, "content", content, errors),
        "errors": errors,
        "is_sms": kind in SMS_TEXT,
    }
    return render_ws(request, "console/messaging/template_editor.html", context, status=status)


@workspace_view("messaging.manage")
@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    kind = request.POST.get("kind") or request.GET.get("kind", "")
    if kind not in TRANSPORTS:
        context = {"cards": kind_cards(), "purpose": "template"}
        return render_ws(request, "console/messaging/kinds.html", context)
    if request.method != "POST":
        return _editor(request, kind, None, "", {})
    name = request.POST.get("name", "")
    try:
        template = actions.template_create(
            workspace=workspace,
            actor=actor,
            kind=kind,
            name=name,
            content=read_content(kind, request.POST),
        )
    except SiyuError as exc:
        errors = place_error(exc, _slots(kind), prefix="content")
        typed = typed_content(kind, request.POST)
        return _editor(request, kind, None, name, typed, errors, status=exc.status)
    messages.success(request, _("Template %(name)s saved.") % {"name": template.name})
    return redirect("console:message_template", workspace.slug, template.pk)


@workspace_view("messaging.view")
@require_GET
def template_detail(
    request: HttpRequest, workspace: Workspace, actor: Actor, template_id: int
) -> HttpResponse:
    template = queries.get_template_for(workspace, template_id)
    return _editor(request, template.kind, template, template.name, template.content)


@workspace_view("messaging.manage")
@require_POST
def template_save(
    request: HttpRequest, workspace: Workspace, actor: Actor, template_id: int
) -> HttpResponse:
    template = queries.get_template_for(workspace, template_id)
    name = request.POST.get("name", "")
    try:
        template = actions.template_update(
            workspace=workspace,
            actor=actor,
            template=template,
            name=name,
            content=read_content(template.kind, request.POST),
        )
    except SiyuError as exc:
        errors = place_error(exc, _slots(template.kind), prefix="content")
        typed = typed_content(template.kind, request.POST)
        return _editor(request, template.kind, template, name, typed, errors, status=exc.status)
    messages.success(request, _("Template %(name)s saved.") % {"name": template.name})
    return redirect("console:message_template", workspace.slug, template.pk)


@workspace_view("messaging.manage")
@require_POST
def template_archive(
    request: HttpRequest, workspace: Workspace, actor: Actor, template_id: int
) -> HttpResponse:
    """Archive (archived=1) or restore (archived=0): an archived template is kept for the
    messages that used it but offered nowhere."""
    template = queries.get_template_for(workspace, template_id)
    archived = request.POST.get("archived") != "0"
    actions.template_update(workspace=workspace, actor=actor, template=template, archived=archived)
    if archived:
        messages.success(request, _("Template %(name)s archived.") % {"name": template.name})
        return redirect("console:message_templates", workspace.slug)
    messages.success(request, _("Template %(name)s restored.") % {"name": template.name})
    return redirect("console:message_template", workspace.slug, template.pk)


# --- the live preview ---------------------------------------------------------------------


def shown_fields(kind: str, rendered: dict[str, Any]) -> list[dict[str, Any]]:
    """The rendered fields in the kind's order, labelled, as the preview shows them (an
    SMS's text is shown filled in, as the customer reads it, instead)."""
    out = []
    for spec in transport_class(kind).template_fields:
        if spec.name not in rendered or (kind in SMS_TEXT and spec.name == "text"):
            continue
        value = rendered[spec.name]
        out.append(
            {
                "name": spec.name,
                "label": field_label(spec),
                "input": input_kind(spec),
                "html": spec.kind == "html",
                "value": list(value.items()) if isinstance(value, dict) else value,
            }
        )
    return out


def channel_sign_name(workspace: Workspace, kind: str) -> str:
    """The sign name of the workspace's first channel of this kind that has one: the
    providers count it in the billed length."""
    rows = ChannelConfig.objects.filter(workspace=workspace, kind=kind).order_by("-enabled", "name")
    for settings in rows.values_list("settings", flat=True):
        if isinstance(settings, dict) and settings.get("sign_name"):
            return str(settings["sign_name"])
    return ""


def sms_info(workspace: Workspace, kind: str, rendered: dict[str, Any]) -> dict[str, Any]:
    """What the recipient reads, its billed length and segments, with the sign name."""
    fill, empty = SMS_TEXT[kind]
    text = fill(rendered.get("text") or "", rendered.get("params") or empty())
    sign = rendered.get("sign_name") or channel_sign_name(workspace, kind)
    full = f"【{sign}】{text}" if sign else text
    length = sms_length(full)
    single, part = SMS_SEGMENT_SIZES[length.encoding]
    return {
        "text": full,
        "sign_name": sign,
        "characters": length.characters,
        "segments": length.segments,
        "single": single,
        "part": part,
        "too_long": length.segments > SMS_MAX_SEGMENTS,
        "max_segments": SMS_MAX_SEGMENTS,
    }


@workspace_view("messaging.view")
@require_POST
def template_preview(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """The editor's form, rendered for a sample contact or the chosen one; 422 with the error
    beside its field when a template or a channel limit refuses it."""
    kind = request.POST.get("kind", "")
    if kind not in TRANSPORTS:
        raise NotFound("no such channel kind")
    errors: dict[str, str] = {}
    rendered: dict[str, Any] | None = None
    contact = None
    contact_id = to_int(request.POST.get("contact_id"))
    try:
        if contact_id is not None:
            contact = get_contact_for(workspace, actor, contact_id)
        rendered = actions.template_render(
            workspace=workspace,
            kind=kind,
            content=read_content(kind, request.POST),
            contact=contact,
        )
    except NotFound:
        errors = {"general": _("That contact is not in this workspace.")}
    except SiyuError as exc:
        errors = place_error(exc, _slots(kind), prefix="content")
    specs = transport_class(kind).template_fields
    context = {
        "kind": kind,
        "contact": contact,
        # every field's error slot is swapped out of band: set, or cleared
        "rows": field_rows(specs, "content", {}, errors),
        "error": errors.get("general", ""),
        "has_errors": bool(errors),
        "shown": shown_fields(kind, rendered) if rendered is not None else [],
        "sms": sms_info(workspace, kind, rendered) if rendered and kind in SMS_TEXT else None,
    }
    status = 422 if errors else 200
    return render_ws(request, "console/messaging/_preview.html", context, status=status)


@workspace_view("messaging.view")
@require_GET
def template_contacts(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """The preview's contact picker: contacts whose name starts with the text, or whose phone
    or e-mail is it (the pool's own search), the first one chosen."""
    q = request.GET.get("contact_q", "").strip()
    contacts = []
    if q:
        found = ContactFilter(q=q).apply(workspace, visible_contacts(workspace, actor))
        contacts = list(found.order_by("name", "id")[:CONTACT_CHOICES])
    response = render_ws(
        request, "console/messaging/_contact_choices.html", {"contacts": contacts, "q": q}
    )
    response.headers["HX-Trigger-After-Swap"] = "preview"  # render again for the chosen one
    return response

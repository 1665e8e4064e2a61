"""Workspace settings (name, time zone, currency) and the custom attribute schema."""

import datetime
import functools
import zoneinfo

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts import actions as account_actions
from siyu.accounts.access import can
from siyu.console.access import error_text, workspace_view
from siyu.contacts import actions as contact_actions
from siyu.contacts.models import AttributeDefinition, AttributeType, Contact
from siyu.core.errors import Conflict, NotFound, SiyuError

TEMPLATE = "console/admin/settings.html"
COMMON_ZONES = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Macau",
    "Asia/Taipei",
    "Asia/Urumqi",
    "Asia/Singapore",
    "Asia/Kuala_Lumpur",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Dubai",
    "Australia/Sydney",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "UTC",
]


@functools.cache
def _valid_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_time_zone(name: str) -> bool:
    """A real IANA zone name (never a path); uses the system's zone list when it has one."""
    zones = _valid_zones()
    if zones:
        return name in zones
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return bool(name)


def zone_choices(current: str) -> list[tuple[str, str]]:
    """The common zones (and the current one if it is not common) labelled with their offset."""
    zones = COMMON_ZONES if current in COMMON_ZONES else [current, *COMMON_ZONES]
    now = datetime.datetime.now(datetime.UTC)
    choices = []
    for name in zones:
        try:
            offset = now.astimezone(zoneinfo.ZoneInfo(name)).strftime("%z")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            choices.append((name, name))
            continue
        choices.append((name, f"{name} (UTC{offset[:3]}:{offset[3:]})"))
    return choices


def _invalid(field: str, message: str) -> SiyuError:
    return SiyuError(message, code="invalid", status=422, details={"field": field})


def _page(request, workspace, actor, *, status=200, ws_form=None, attr_form=None):
    context = {
        "ws_form": ws_form or {"name": workspace.name, "timezone": workspace.timezone},
        "zones": zone_choices(workspace.timezone),
        "definitions": list(AttributeDefinition.objects.filter(workspace=workspace)),
        "types": AttributeType.choices,
        "attr_form": attr_form or {"type": AttributeType.TEXT},
        "can_attributes": can(actor, "attributes.manage"),
    }
    return render(request, TEMPLATE, context, status=status)


@workspace_view("settings.manage")
def workspace_settings(request, workspace, actor):
    return _page(request, workspace, actor)


@workspace_view("settings.manage")
@require_POST
def workspace_save(request, workspace, actor):
    name = request.POST.get("name", "").strip()
    tz = request.POST.get("timezone", "").strip()
    form = {"name": name, "timezone": tz}
    try:
        if not name:
            raise _invalid("name", _("Workspace name: must not be empty."))
        if len(name) > 120:
            raise _invalid("name", _("Workspace name: at most 120 characters."))
        if not is_time_zone(tz):
            raise _invalid(
                "timezone", _("Time zone: “%(tz)s” is not a known time zone.") % {"tz": tz}
            )
        changes = {k: v for k, v in form.items() if getattr(workspace, k) != v}
        if changes:
            account_actions.workspace_update(workspace=workspace, actor=actor, **changes)
    except SiyuError as exc:
        return _page(
            request, workspace, actor, status=exc.status, ws_form={**form, "error": error_text(exc)}
        )
    messages.success(request, _("Settings saved.") if changes else _("Nothing changed."))
    return redirect("console:settings", workspace.slug)


def _attribute_error(exc: SiyuError) -> str:
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    if isinstance(exc, Conflict):
        return _("Key: an attribute with this key already exists.")
    if field == "type":
        return _("Type: choose one of the types.")
    return error_text(exc)


@workspace_view("attributes.manage")
@require_POST
def attribute_define(request, workspace, actor):
    form = {
        "key": request.POST.get("key", "").strip(),
        "label": request.POST.get("label", "").strip(),
        "type": request.POST.get("type", ""),
        "choices": request.POST.get("choices", ""),
    }
    choices = [line.strip() for line in form["choices"].splitlines() if line.strip()]
    try:
        if len(form["label"]) > 60:
            raise _invalid("label", _("Label: at most 60 characters."))
        if len(set(choices)) != len(choices):
            raise _invalid("choices", _("Choices: each choice may appear only once."))
        definition = contact_actions.attribute_define(
            workspace=workspace,
            actor=actor,
            key=form["key"],
            label=form["label"],
            type=form["type"],
            choices=choices,
        )
    except SiyuError as exc:
        attr_form = {**form, "error": _attribute_error(exc)}
        return _page(request, workspace, actor, status=exc.status, attr_form=attr_form)
    messages.success(request, _("Attribute “%(label)s” defined.") % {"label": definition.label})
    return redirect(reverse("console:settings", args=[workspace.slug]) + "#attributes")


@workspace_view("attributes.manage")
def attribute_delete(request, workspace, actor, definition_id: int):
    definition = AttributeDefinition.objects.filter(workspace=workspace, pk=definition_id).first()
    if definition is None:
        raise NotFound("attribute not found")
    if request.method == "POST":
        contact_actions.attribute_delete(workspace=workspace, actor=actor, definition=definition)
        messages.success(request, _("Attribute “%(label)s” deleted.") % {"label": definition.label})
        return redirect(reverse("console:settings", args=[workspace.slug]) + "#attributes")
    with_value = Contact.objects.filter(
        workspace=workspace, attributes__has_key=definition.key
    ).count()
    return render(
        request,
        "console/admin/confirm.html",
        {
            "title": _("Delete attribute “%(label)s” (%(key)s)?")
            % {"label": definition.label, "key": definition.key},
            "lines": [
                _(
                    "%(n)s contacts have a value for it. The values are kept but no longer shown "
                    "or editable; defining the same key again brings them back."
                )
                % {"n": with_value},
            ],
            "button": _("Delete attribute"),
            "cancel": reverse("console:settings", args=[workspace.slug]) + "#attributes",
        },
    )

"""Staff and roles: members of the workspace, adding staff, changing roles (htmx row swap or
plain post), removing, and a legend of what each role may do generated from the matrix."""

from django.contrib import messages
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from siyu.accounts import actions
from siyu.accounts.access import can
from siyu.accounts.models import Membership, Staff
from siyu.accounts.permissions import DESCRIPTIONS, MATRIX, OWN_ONLY, Role
from siyu.console.access import error_text, workspace_view
from siyu.core.errors import Conflict, NotFound, SiyuError

TEMPLATE = "console/admin/staff.html"
ROW = "console/admin/_staff_row.html"
ROLE_ORDER = {role: i for i, role in enumerate(Role.values)}
# Permissions an own-only role (agent) holds only over the contacts it owns.
OWN_SCOPED_PREFIXES = ("contacts.", "dashboard.")


def _error_text(exc: SiyuError) -> str:
    if isinstance(exc, Conflict) and exc.details.get("field") == "email":
        return _("Email: this person is already a member of the workspace.")
    return error_text(exc)


def role_legend() -> dict:
    """Rows of (permission, description, one cell per role) from MATRIX and DESCRIPTIONS."""
    roles = list(Role)
    rows = []
    for perm, holders in MATRIX.items():
        cells = []
        for role in roles:
            if role not in holders:
                cells.append("no")
            elif role in OWN_ONLY and perm.startswith(OWN_SCOPED_PREFIXES):
                cells.append("own")
            else:
                cells.append("yes")
        rows.append({"perm": perm, "description": DESCRIPTIONS.get(perm, ""), "cells": cells})
    return {"roles": [role.label for role in roles], "rows": rows}


def _grantable(actor) -> list[tuple[str, str]]:
    """Roles the actor may hand out; only owners grant owner (the action checks it too)."""
    return [(r.value, r.label) for r in Role if r != Role.OWNER or actor.role == Role.OWNER]


def _decorate(membership: Membership, actor, *, error: str = "", value: str = "") -> Membership:
    is_manager = can(actor, "staff.manage")
    owner_row = membership.role == Role.OWNER
    membership.editable = is_manager and (not owner_row or actor.role == Role.OWNER)
    membership.is_me = membership.staff_id == getattr(actor.user, "pk", None)
    membership.error, membership.error_value = error, value
    return membership


def _members(workspace, actor) -> list[Membership]:
    rows = list(Membership.objects.filter(workspace=workspace).select_related("staff"))
    rows.sort(key=lambda m: (ROLE_ORDER.get(m.role, 99), m.created_at, m.pk))
    return [_decorate(m, actor) for m in rows]


def _member_for(workspace, membership_id: int) -> Membership:
    membership = (
        Membership.objects.filter(workspace=workspace, pk=membership_id)
        .select_related("staff")
        .first()
    )
    if membership is None:
        raise NotFound("staff member not found")
    return membership


def _page(request, workspace, actor, *, status=200, row_error=None, add=None, page_error=""):
    members = _members(workspace, actor)
    if row_error:
        mid, message, value = row_error
        for m in members:
            if m.pk == mid:
                m.error, m.error_value = message, value
    context = {
        "members": members,
        "can_manage": can(actor, "staff.manage"),
        "grantable": _grantable(actor),
        "legend": role_legend(),
        "add": add or {"role": Role.OPERATOR},
        "page_error": page_error,
    }
    return render(request, TEMPLATE, context, status=status)


@workspace_view("staff.view")
def staff(request, workspace, actor):
    return _page(request, workspace, actor)


def _invalid(field: str, message: str) -> SiyuError:
    return SiyuError(message, code="invalid", status=422, details={"field": field})


def _check_add(data: dict) -> None:
    """Field checks before the action; raise an error whose message names the field."""
    try:
        validate_email(data["email"])
    except DjangoValidationError as exc:
        raise _invalid("email", _("Email: enter a valid email address.")) from exc
    if len(data["name"]) > 120:
        raise _invalid("name", _("Name: at most 120 characters."))
    if data["role"] not in Role.values:
        raise _invalid("role", _("Role: choose a role."))
    if data["existing"]:
        return  # an existing login keeps its own password
    if not data["password"]:
        raise _invalid("password", _("Initial password: required for a new login."))
    try:
        validate_password(data["password"])
    except DjangoValidationError as exc:
        raise _invalid(
            "password", _("Initial password: %(why)s") % {"why": " ".join(exc.messages)}
        ) from exc


@workspace_view("staff.manage")
@require_POST
def staff_add(request, workspace, actor):
    email = request.POST.get("email", "").strip().lower()
    data = {
        "email": email,
        "name": request.POST.get("name", "").strip(),
        "role": request.POST.get("role", ""),
        "password": request.POST.get("password", ""),
        "existing": bool(email) and Staff.objects.filter(email__iexact=email).exists(),
    }
    try:
        _check_add(data)
        membership = actions.staff_add(
            workspace=workspace,
            actor=actor,
            email=email,
            role=data["role"],
            name=data["name"],
            # Never reset the password of a login that already exists (it may belong to
            # another workspace); only a brand-new login gets the initial password.
            password=None if data["existing"] else data["password"],
        )
    except SiyuError as exc:
        add = {**data, "password": "", "error": _error_text(exc)}
        return _page(request, workspace, actor, status=exc.status, add=add)
    note = _("%(who)s added as %(role)s.") % {
        "who": membership.staff.display_name,
        "role": membership.get_role_display(),
    }
    if data["existing"]:
        note += " " + _("They already had a login and keep their own password.")
    messages.success(request, note)
    return redirect("console:staff", workspace.slug)


def _row(request, workspace, actor, membership_id: int, *, error: str = "", saved=False):
    """One table row, for htmx to swap in place."""
    member = _decorate(_member_for(workspace, membership_id), actor, error=error)
    member.saved = saved
    context = {"m": member, "grantable": _grantable(actor), "can_manage": True}
    return render(request, ROW, context)


@workspace_view("staff.manage")
@require_POST
def staff_role(request, workspace, actor, membership_id: int):
    membership = _member_for(workspace, membership_id)
    role = request.POST.get("role", "")
    try:
        if role not in Role.values:
            raise _invalid("role", _("Role: choose a role."))
        membership = actions.staff_set_role(
            workspace=workspace, actor=actor, membership=membership, role=role
        )
    except SiyuError as exc:
        message = _error_text(exc)
        if request.htmx:  # htmx swaps only 2xx responses; the row carries the error
            return _row(request, workspace, actor, membership_id, error=message)
        return _page(
            request, workspace, actor, status=exc.status, row_error=(membership.pk, message, role)
        )
    if request.htmx:
        if membership.staff_id == getattr(actor.user, "pk", None):
            return HttpResponseClientRefresh()  # my own role changed: reload what I may do
        return _row(request, workspace, actor, membership_id, saved=True)
    messages.success(
        request,
        _("%(who)s is now %(role)s.")
        % {"who": membership.staff.display_name, "role": membership.get_role_display()},
    )
    return redirect("console:staff", workspace.slug)


@workspace_view("staff.manage")
def staff_remove(request, workspace, actor, membership_id: int):
    membership = _member_for(workspace, membership_id)
    who = membership.staff.display_name
    if request.method == "POST":
        try:
            actions.staff_remove(workspace=workspace, actor=actor, membership=membership)
        except SiyuError as exc:
            return _page(request, workspace, actor, status=exc.status, page_error=_error_text(exc))
        messages.success(request, _("%(who)s removed from the workspace.") % {"who": who})
        if membership.staff_id == getattr(actor.user, "pk", None):
            return redirect("console:home")
        return redirect("console:staff", workspace.slug)
    lines = [
        _("%(who)s (%(email)s, %(role)s) will no longer be able to open this workspace.")
        % {"who": who, "email": membership.staff.email, "role": membership.get_role_display()},
        _(
            "Their login and their other workspaces are not affected; contacts they own keep "
            "them as owner until reassigned."
        ),
    ]
    if membership.staff_id == getattr(actor.user, "pk", None):
        lines.insert(0, _("You are removing yourself: you will lose access at once."))
    return render(
        request,
        "console/admin/confirm.html",
        {
            "title": _("Remove %(who)s?") % {"who": who},
            "lines": lines,
            "button": _("Remove from workspace"),
            "cancel": reverse("console:staff", args=[workspace.slug]),
        },
    )

"""Helpers shared by the console's pool pages (list, detail, jobs): rendering in the
workspace's time zone, htmx partial detection, inline form errors, and the choices the
filters and pickers offer."""

from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from siyu.accounts.access import can
from siyu.accounts.models import Membership, Staff
from siyu.accounts.permissions import MATRIX
from siyu.console.access import error_response
from siyu.contacts.models import Source, Tag, TagGroup
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace


def allowed_map(actor: Actor) -> dict[str, dict[str, bool]]:
    """{"contacts": {"tag": True, ...}, "pii": {"reveal": False}} so templates can write
    `allowed.contacts.tag` and hide buttons the role may not use."""
    out: dict[str, dict[str, bool]] = {}
    for perm in MATRIX:
        area, _dot, name = perm.partition(".")
        out.setdefault(area, {})[name] = can(actor, perm)
    return out


def render_ws(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render with times shown in the workspace's time zone (stored in UTC)."""
    workspace: Workspace = request.workspace
    context.setdefault("allowed", allowed_map(request.actor))
    with timezone.override(workspace.timezone):
        response = render(request, template, context, status=status)
    # The same URL answers htmx with a fragment and browsers with a page: never mix caches.
    patch_vary_headers(response, ["HX-Request"])
    return response


def is_partial(request: HttpRequest, target: str) -> bool:
    """An htmx swap into `target` (a history restore wants the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


def form_error(request: HttpRequest, exc: SiyuError, slot: str) -> HttpResponse:
    """The error partial, retargeted into the form's error slot."""
    response = error_response(request, exc)
    response.headers["HX-Retarget"] = f"#{slot}"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


def invalid(message: str) -> SiyuError:
    return SiyuError(message, code="invalid", status=422)


def to_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def staff_choices(workspace: Workspace) -> list[Staff]:
    """Active staff members of the workspace, for owner filters and pickers."""
    rows = (
        Membership.objects.filter(workspace=workspace, staff__is_active=True)
        .select_related("staff")
        .order_by("staff__name", "staff__email")
    )
    return [m.staff for m in rows]


def tag_groups(workspace: Workspace, exclude: set[int] | frozenset[int] = frozenset()) -> list:
    """Tag groups with their tags (minus `exclude`), for grouped selects."""
    tags = Tag.objects.filter(workspace=workspace).exclude(pk__in=exclude)
    groups = TagGroup.objects.filter(workspace=workspace).prefetch_related(
        Prefetch("tags", queryset=tags)
    )
    return [g for g in groups if g.tags.all()]


def source_choices(current: str = "") -> list[tuple[str, str]]:
    choices = [(code, str(label)) for code, label in Source.choices]
    if current and current not in Source.values:  # free-text sources stay selectable
        choices.append((current, current))
    return choices

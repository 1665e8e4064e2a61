"""触达规则: frequency caps per contact (all channels together and per channel, per day and
per week; an empty cell is no cap) and quiet hours in the workspace's time zone, during which
messages wait. Caps the table does not show (set through the API) are kept as they are."""

import datetime
import zoneinfo
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws
from siyu.console.views.messaging_fields import REACH_LABELS, WINDOW_LABELS, place_error
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError, ValidationError
from siyu.core.models import Workspace
from siyu.messaging import actions, guardrails

SCOPES = ("all", "sms", "email", "wecom", "wechat")
WINDOWS = ("day", "week")
QUIET = ("quiet_start", "quiet_end")


def _slots() -> set[str]:
    return {f"caps.{s}.{w}" for s in SCOPES for w in WINDOWS} | set(QUIET)


def _page(
    request: HttpRequest,
    workspace: Workspace,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    rows = [
        {
            "scope": scope,
            "label": REACH_LABELS[scope],
            "cells": [
                {
                    "name": f"caps.{scope}.{window}",
                    "label": WINDOW_LABELS[window],
                    "value": form.get(f"caps.{scope}.{window}", ""),
                    "error": errors.get(f"caps.{scope}.{window}", ""),
                }
                for window in WINDOWS
            ],
        }
        for scope in SCOPES
    ]
    now = timezone.now().astimezone(zoneinfo.ZoneInfo(workspace.timezone))
    context = {
        "rows": rows,
        "windows": [WINDOW_LABELS[w] for w in WINDOWS],
        "form": form,
        "errors": errors,
        "local_time": now.strftime("%H:%M"),
    }
    return render_ws(request, "console/messaging/policy.html", context, status=status)


def _stored_form(workspace: Workspace) -> dict[str, str]:
    policy = guardrails.policy_for(workspace)
    form = {
        f"caps.{scope}.{window}": str(limit)
        for scope, windows in policy.caps.items()
        for window, limit in windows.items()
    }
    form["quiet_start"] = policy.quiet_start.strftime("%H:%M") if policy.quiet_start else ""
    form["quiet_end"] = policy.quiet_end.strftime("%H:%M") if policy.quiet_end else ""
    return form


def parse_caps(form: dict[str, str], stored: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The table as caps: a whole number per filled cell. Scopes the table does not show
    (a webhook cap set through the API) keep their stored value."""
    caps: dict[str, Any] = {s: dict(w) for s, w in stored.items() if s not in SCOPES}
    for scope in SCOPES:
        for window in WINDOWS:
            name = f"caps.{scope}.{window}"
            raw = form[name]
            if not raw:
                continue
            try:
                caps.setdefault(scope, {})[window] = int(raw)
            except ValueError:
                raise ValidationError(name, "expected a whole number from 0 to 1000") from None
    return caps


def parse_time(name: str, raw: str) -> datetime.time | None:
    if not raw:
        return None
    try:
        return datetime.time.fromisoformat(raw)
    except ValueError:
        raise ValidationError(name, "expected a time such as 21:00") from None


@workspace_view("messaging.view")
@require_GET
def reach_policy(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    return _page(request, workspace, _stored_form(workspace))


@workspace_view("messaging.manage")
@require_POST
def reach_policy_save(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    form = {name: request.POST.get(name, "").strip() for name in _slots()}
    try:
        actions.policy_update(
            workspace=workspace,
            actor=actor,
            caps=parse_caps(form, guardrails.policy_for(workspace).caps),
            quiet_start=parse_time("quiet_start", form["quiet_start"]),
            quiet_end=parse_time("quiet_end", form["quiet_end"]),
        )
    except SiyuError as exc:
        return _page(request, workspace, form, place_error(exc, _slots()), status=exc.status)
    messages.success(request, _("Reach rules saved."))
    return redirect("console:reach_policy", workspace.slug)

"""API keys: list, create (the clear key is shown once, in the POST response only, never
stored or shown again) and revoke."""

from django.contrib import messages
from django.db.models import F
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from siyu.accounts import actions
from siyu.accounts.models import ApiKey, Membership
from siyu.accounts.permissions import Role
from siyu.console.access import error_text, workspace_view
from siyu.core.errors import NotFound, SiyuError

TEMPLATE = "console/admin/apikeys.html"
KEY_ROLES = [(r.value, r.label) for r in Role if r != Role.OWNER]


def _page(request, workspace, *, status=200, created=None, raw="", form=None):
    keys = (
        ApiKey.objects.filter(workspace=workspace)
        .select_related("created_by", "acts_for")
        .order_by(F("revoked_at").asc(nulls_first=True), "-id")  # active keys first
    )
    context = {
        "keys": list(keys),
        "key_roles": KEY_ROLES,
        "created": created,
        "raw_key": raw,
        "api_url": request.build_absolute_uri("/api/v1/contacts"),
        "form": form or {"role": Role.OPERATOR},
        "agents": Membership.objects.filter(workspace=workspace, role=Role.AGENT)
        .select_related("staff")
        .order_by("staff__name"),
    }
    return render(request, TEMPLATE, context, status=status)


def _key_for(workspace, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(workspace=workspace, pk=key_id).first()
    if key is None:
        raise NotFound("API key not found")
    return key


@workspace_view("apikeys.manage")
def apikeys(request, workspace, actor):
    return _page(request, workspace)


@never_cache
@workspace_view("apikeys.manage")
@require_POST
def apikey_create(request, workspace, actor):
    name = request.POST.get("name", "").strip()
    role = request.POST.get("role", "")
    acts_for = request.POST.get("acts_for", "")
    try:
        if len(name) > 120:
            raise SiyuError(_("Name: at most 120 characters."), status=422)
        key, raw = actions.apikey_create(
            workspace=workspace,
            actor=actor,
            name=name,
            role=role,
            acts_for_id=int(acts_for) if acts_for.isdigit() else None,
        )
    except SiyuError as exc:
        form = {"name": name, "role": role, "acts_for": acts_for, "error": error_text(exc)}
        return _page(request, workspace, status=exc.status, form=form)
    # Rendered in this response only (no redirect): the clear key never enters the session,
    # the database or any later page; `never_cache` keeps it out of caches.
    return _page(request, workspace, created=key, raw=raw)


@workspace_view("apikeys.manage")
def apikey_revoke(request, workspace, actor, key_id: int):
    key = _key_for(workspace, key_id)
    if request.method == "POST":
        actions.apikey_revoke(workspace=workspace, actor=actor, key=key)
        messages.success(
            request, _("API key “%(name)s” revoked; it stops working at once.") % {"name": key.name}
        )
        return redirect("console:apikeys", workspace.slug)
    return render(
        request,
        "console/admin/confirm.html",
        {
            "title": _("Revoke API key “%(name)s”?") % {"name": key.name},
            "lines": [
                _(
                    "The key %(prefix)s… will stop working immediately; integrations that use it "
                    "will get 401 errors."
                )
                % {"prefix": key.prefix},
                _("This cannot be undone: create a new key to replace it."),
            ],
            "button": _("Revoke key"),
            "cancel": reverse("console:apikeys", args=[workspace.slug]),
        },
    )

"""Data sources (数据源): write keys (the clear key is shown once, in the POST response
only), copy-paste snippets for analytics.js / Python / WeChat mini programs, the ingestion
lag and a live stream of the latest events. Writes go through siyu.tracking.actions only."""

from urllib.parse import urlsplit

from django.contrib import messages
from django.db.models import F
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import is_own_only
from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import render_ws
from siyu.core.errors import NotFound, SiyuError
from siyu.tracking import actions, queries
from siyu.tracking.models import Event, QueuedEvent, WriteKey

TEMPLATE = "console/data/data_sources.html"
EVENTS_TEMPLATE = "console/data/_events.html"
LIVE_EVENTS = 50


def _snippet_context(request, keys: list[WriteKey]) -> dict:
    """The server's own base URL and a placeholder showing the newest active key's prefix
    (never a clear key: only its first characters are known after creation)."""
    base = urlsplit(request.build_absolute_uri("/"))
    active = next((k for k in keys if k.is_active), None)
    return {
        "siyu_host": base.netloc,
        "siyu_protocol": base.scheme,
        "siyu_base": f"{base.scheme}://{base.netloc}",
        "key_placeholder": f"{active.prefix}..." if active else "wk_...",
    }


def _events(workspace, actor):
    qs = Event.objects.filter(workspace=workspace)
    if is_own_only(actor.role):  # agents: only events of their own contacts
        qs = qs.filter(resolution__contact__owner=actor.user) if actor.user else qs.none()
    # the resolution (status, contact) comes with the event: no query per row
    rows = list(qs.select_related("resolution__contact").order_by("-id")[:LIVE_EVENTS])
    for event in rows:
        event.resolved = getattr(event, "resolution", None)  # None while pending
    # why a pending event failed is on its queue row, read for the pending ones only
    pending = [e.pk for e in rows if e.resolved is None]
    errors = (
        dict(
            QueuedEvent.objects.filter(workspace_id=workspace.pk, event_id__in=pending)
            .exclude(error="")
            .values_list("event_id", "error")
        )
        if pending
        else {}
    )
    for event in rows:
        event.queue_error = errors.get(event.pk, "")
        # Values of traits and properties are never shown (phones and emails are PII):
        # only their keys.
        event.property_keys = sorted(event.properties) if isinstance(event.properties, dict) else []
        event.trait_keys = sorted(event.traits) if isinstance(event.traits, dict) else []
    return rows


def _page(request, workspace, actor, *, status=200, created=None, raw="", form=None):
    keys = list(
        queries.write_keys(workspace)
        .select_related("created_by")
        .order_by(F("revoked_at").asc(nulls_first=True), "-id")  # active keys first
    )
    context = {
        "keys": keys,
        "created": created,
        "raw_key": raw,
        "form": form or {},
        "lag": queries.ingestion_lag(workspace),
        "ever_received": Event.objects.filter(workspace=workspace).exists(),
        "events": _events(workspace, actor),
        **_snippet_context(request, keys),
    }
    return render_ws(request, TEMPLATE, context, status=status)


def _key_for(workspace, key_id: int) -> WriteKey:
    key = WriteKey.objects.filter(workspace=workspace, pk=key_id).first()
    if key is None:
        raise NotFound("write key not found")
    return key


@workspace_view("apikeys.manage")
def data_sources(request, workspace, actor):
    return _page(request, workspace, actor)


@never_cache
@workspace_view("contacts.view")
def events(request, workspace, actor):
    """The live stream partial, polled by htmx every 3 s."""
    return render_ws(request, EVENTS_TEMPLATE, {"events": _events(workspace, actor)})


@never_cache
@workspace_view("apikeys.manage")
@require_POST
def writekey_create(request, workspace, actor):
    name = request.POST.get("name", "").strip()
    try:
        if len(name) > 120:
            raise SiyuError(_("Name: at most 120 characters."), status=422)
        key, raw = actions.writekey_create(workspace=workspace, actor=actor, name=name)
    except SiyuError as exc:
        form = {"name": name, "error": error_text(exc)}
        return _page(request, workspace, actor, status=exc.status, form=form)
    # Rendered in this response only (no redirect): the clear key never enters the session,
    # the database or any later page; `never_cache` keeps it out of caches.
    return _page(request, workspace, actor, created=key, raw=raw)


@workspace_view("apikeys.manage")
def writekey_revoke(request, workspace, actor, key_id: int):
    key = _key_for(workspace, key_id)
    if request.method == "POST":
        actions.writekey_revoke(workspace=workspace, actor=actor, key=key)
        messages.success(
            request,
            _("Write key “%(name)s” revoked; it stops working at once.") % {"name": key.name},
        )
        return redirect("console:data_sources", workspace.slug)
    return render(
        request,
        "console/admin/confirm.html",
        {
            "title": _("Revoke write key “%(name)s”?") % {"name": key.name},
            "lines": [
                _(
                    "The key %(prefix)s… will stop working immediately: sites, apps and servers "
                    "that use it will get 401 errors and their events will be lost."
                )
                % {"prefix": key.prefix},
                _("Events it sent before stay. This cannot be undone: create a new key."),
            ],
            "button": _("Revoke key"),
            "cancel": reverse("console:data_sources", args=[workspace.slug]),
        },
    )

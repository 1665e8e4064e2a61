"""The segment builder: a new segment, editing one, and the live count while the rule is
edited. The page carries the rule as JSON (the script's single source of truth, in a hidden
field); the server validates it on every preview and again on save, and never trusts it."""

import datetime
import json
import zoneinfo
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import render_ws, staff_choices, tag_groups, to_int
from siyu.console.views.segments_text import builder_labels, rule_text
from siyu.contacts.models import AttributeDefinition
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, NotFound, SiyuError, ValidationError
from siyu.core.models import Workspace
from siyu.segments import actions, catalog, queries
from siyu.segments.models import LifecycleStage, Segment, SegmentKind, ValueTier
from siyu.segments.rules import ATTRIBUTE_TYPES
from siyu.tracking.models import DailyEventCount

EVENT_NAME_DAYS = 90
EVENT_NAME_LIMIT = 300


def recent_event_names(workspace: Workspace) -> list[str]:
    """Distinct event names the workspace's contacts sent in the last 90 days (the daily
    rollup, read through its (workspace, event, day) index), for the name autocomplete."""
    since = timezone.now().date() - datetime.timedelta(days=EVENT_NAME_DAYS)
    names = (
        DailyEventCount.objects.filter(workspace=workspace, day__gte=since)
        .values_list("event", flat=True)
        .distinct()
        .order_by("event")
    )
    return list(names[:EVENT_NAME_LIMIT])


def builder_config(workspace: Workspace, segment: Segment | None, error: Any = None) -> dict:
    """What the builder's script needs: the catalog, labels and the workspace's own choices."""
    attributes = [
        {
            "key": d.key,
            "label": d.label,
            "type": ATTRIBUTE_TYPES.get(d.type, "text"),
            "choices": [{"value": c, "label": c} for c in d.choices],
        }
        for d in AttributeDefinition.objects.filter(workspace=workspace).order_by("id")
    ]
    others = queries.segments(workspace).order_by("kind", "name")
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    return {
        "schema": catalog.schema(),
        "labels": builder_labels(),
        "attributes": attributes,
        "tags": [
            {"group": g.name, "tags": [{"id": t.pk, "name": t.name} for t in g.tags.all()]}
            for g in tag_groups(workspace)
        ],
        "staff": [{"id": s.pk, "name": s.display_name} for s in staff_choices(workspace)],
        "segments": [{"id": s.pk, "name": s.name} for s in others],
        "events": recent_event_names(workspace),
        "preview_url": reverse("console:segment_preview", args=[workspace.slug]),
        "segment_id": segment.pk if segment is not None else None,
        "today": timezone.now().astimezone(tz).date().isoformat(),
        "error": error,
    }


def seeded_rule(params: QueryDict) -> dict:
    """A new segment's starting rule: empty, or the stage × tier cell it was opened from."""
    rules = []
    if params.get("stage") in LifecycleStage.values:
        rules.append({"type": "score", "field": "stage", "op": "eq", "value": params["stage"]})
    if params.get("tier") in ValueTier.values:
        rules.append({"type": "score", "field": "tier", "op": "eq", "value": params["tier"]})
    return {"type": "and", "rules": rules}


def parse_rule(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise ValidationError("rule", "expected a rule as JSON") from exc


def _field(exc: SiyuError | None) -> str:
    """The form field or rule path an error is about ("name", "rule.rules[1].op"), or ""."""
    details = exc.details if exc is not None and isinstance(exc.details, dict) else {}
    return str(details.get("field", ""))


def _in_rule(field: str) -> bool:
    return field == "rule" or field.startswith("rule.")


def _rule_error(exc: SiyuError | None) -> dict | None:
    """A save error that names a place in the rule, for the script to show beside it."""
    field = _field(exc)
    return {"path": field, "message": exc.localized()} if exc and _in_rule(field) else None


def _error_message(exc: SiyuError) -> str:
    field = _field(exc)
    if field == "name":
        return _("Name: %(error)s") % {"error": error_text(exc)}
    if _in_rule(field):
        return _("Rule: %(error)s") % {"error": error_text(exc)}
    return error_text(exc)


def _page(
    request: HttpRequest,
    workspace: Workspace,
    segment: Segment | None,
    form: dict[str, Any],
    error: SiyuError | None = None,
) -> HttpResponse:
    dynamic = segment is None or segment.kind == SegmentKind.DYNAMIC
    context = {
        "segment": segment,
        "form": form,
        "dynamic": dynamic,
        "error": _error_message(error) if error else "",
        "error_field": _field(error),
        "config": builder_config(workspace, segment, _rule_error(error)) if dynamic else None,
    }
    status = error.status if error else 200
    return render_ws(request, "console/segments/builder.html", context, status=status)


def _form(post: QueryDict) -> dict[str, Any]:
    return {
        "name": post.get("name", "").strip(),
        "description": post.get("description", "").strip(),
        "realtime": post.get("realtime") == "1",
        "rule": post.get("rule", ""),
    }


@workspace_view("segments.manage")
@require_http_methods(["GET", "POST"])
def segment_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    if request.method != "POST":
        form = {"name": "", "description": "", "realtime": False}
        form["rule"] = json.dumps(seeded_rule(request.GET), ensure_ascii=False)
        return _page(request, workspace, None, form)
    form = _form(request.POST)
    try:
        segment = actions.segment_create(
            workspace=workspace,
            actor=actor,
            name=form["name"],
            description=form["description"],
            realtime=form["realtime"],
            rule=parse_rule(form["rule"]),
        )
    except SiyuError as exc:
        return _page(request, workspace, None, form, exc)
    messages.success(request, _("Segment created: %(n)s contacts.") % {"n": segment.size})
    return redirect("console:segment", workspace.slug, segment.pk)


@workspace_view("segments.manage")
@require_http_methods(["GET", "POST"])
def segment_edit(
    request: HttpRequest, workspace: Workspace, actor: Actor, segment_id: int
) -> HttpResponse:
    segment = queries.get_segment_for(workspace, segment_id)
    if segment.kind == SegmentKind.BUILTIN:
        exc = Conflict("built-in segments cannot be edited; change the scoring settings")
        messages.error(request, error_text(exc))
        return redirect("console:segment", workspace.slug, segment.pk)
    if request.method != "POST":
        form = {
            "name": segment.name,
            "description": segment.description,
            "realtime": segment.realtime,
            "rule": json.dumps(segment.rule or actions.EMPTY_RULE, ensure_ascii=False),
        }
        return _page(request, workspace, segment, form)
    form = _form(request.POST)
    changes: dict[str, Any] = {"name": form["name"], "description": form["description"]}
    try:
        if segment.kind == SegmentKind.DYNAMIC:
            changes.update(realtime=form["realtime"], rule=parse_rule(form["rule"]))
        actions.segment_update(workspace=workspace, actor=actor, segment=segment, changes=changes)
    except SiyuError as exc:
        segment.refresh_from_db()  # the action may have set fields before it refused
        return _page(request, workspace, segment, form, exc)
    messages.success(request, _("Segment saved."))
    return redirect("console:segment", workspace.slug, segment.pk)


@workspace_view("segments.view")
@require_POST
def segment_preview(request: HttpRequest, workspace: Workspace, actor: Actor) -> JsonResponse:
    """POST {"rule": ..., "segment_id": ...} → {"count", "sample", "text"}; a bad rule is a
    422 {"error": {"path", "message"}} naming where in the rule the problem is."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    segment_id = to_int(body.get("segment_id"))
    try:
        if segment_id is not None:
            segment_id = queries.get_segment_for(workspace, segment_id).pk
        result = queries.preview(workspace, body.get("rule"), actor, segment_id)
    except ValidationError as exc:
        error = {"path": exc.field, "message": exc.localized()}
        return _json({"error": error}, status=422)
    except NotFound:
        return _json({"error": {"path": "segment_id", "message": _("Segment not found.")}}, 404)
    sample = [
        {
            "id": row["id"],
            "name": row["name"] or _("(no name)"),
            "url": reverse("console:contact", args=[workspace.slug, row["id"]]),
        }
        for row in result["sample"][:5]
    ]
    return _json(
        {
            "count": result["count"],
            "sample": sample,
            "text": rule_text(workspace, result["rule"]),
        }
    )


def _json(data: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})
    response.headers["Cache-Control"] = "no-store"
    return response

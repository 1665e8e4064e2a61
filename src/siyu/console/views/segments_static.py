"""Static segments (a fixed list): created from an uploaded list of identities or from the
contacts ticked on the contact list, members added by another upload or removed one by one.
Every contact id is scoped to what the actor may see before it reaches the action."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import invalid, render_ws, to_int
from siyu.console.views.segments import detail_page
from siyu.console.views.segments_upload import MatchReport, match_upload
from siyu.contacts.imports.reading import ImportFileError
from siyu.contacts.queries import visible_contacts
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, SiyuError
from siyu.core.models import Workspace
from siyu.core.uploads import UploadTooLarge, limit_mb, upload_refused
from siyu.segments import actions, queries
from siyu.segments.models import Segment, SegmentKind


def static_segment_choices(workspace: Workspace) -> list[Segment]:
    """The workspace's static segments, for "add to segment" pickers."""
    return list(queries.segments(workspace, SegmentKind.STATIC).order_by("name"))


def _static(workspace: Workspace, segment_id: Any) -> Segment:
    segment = queries.get_segment_for(workspace, segment_id)
    if segment.kind != SegmentKind.STATIC:
        raise NotFound("segment not found")
    return segment


def _read(request: HttpRequest, workspace: Workspace, actor: Actor) -> MatchReport:
    if upload_refused(request):
        raise UploadTooLarge("file")
    upload = request.FILES.get("file")
    if upload is None:
        raise ImportFileError("choose a file to upload")
    return match_upload(workspace, actor, upload)


def _result(
    request: HttpRequest, segment: Segment, report: MatchReport, added: int, created: bool
) -> HttpResponse:
    context = {"segment": segment, "report": report, "added": added, "created": created}
    return render_ws(request, "console/segments/upload_result.html", context)


@workspace_view("segments.manage")
@require_http_methods(["GET", "POST"])
def static_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """A static segment from an uploaded list of phones, emails or ids."""
    form = {"name": "", "description": ""}
    error = None
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        try:
            if not form["name"]:
                raise invalid(_("Give the segment a name."))
            report = _read(request, workspace, actor)
            segment = actions.segment_create(
                workspace=workspace,
                actor=actor,
                name=form["name"],
                description=form["description"],
                kind=SegmentKind.STATIC,
                contact_ids=report.contact_ids,
            )
        except SiyuError as exc:
            error = exc
        else:
            return _result(request, segment, report, segment.size, created=True)
    context = {"form": form, "error": error_text(error) if error else "", "max_mb": limit_mb()}
    status = error.status if error else 200
    return render_ws(request, "console/segments/static_new.html", context, status=status)


@workspace_view("segments.manage")
@require_POST
def static_upload(
    request: HttpRequest, workspace: Workspace, actor: Actor, segment_id: int
) -> HttpResponse:
    """More members for a static segment, from an uploaded list."""
    segment = _static(workspace, segment_id)
    try:
        report = _read(request, workspace, actor)
        result = actions.static_members_change(
            workspace=workspace, actor=actor, segment=segment, add=report.contact_ids
        )
    except SiyuError as exc:
        return detail_page(request, workspace, actor, segment, {"upload": exc}, exc.status)
    return _result(request, segment, report, result["entered"], created=False)


@workspace_view("segments.manage")
@require_POST
def static_remove(
    request: HttpRequest, workspace: Workspace, actor: Actor, segment_id: int
) -> HttpResponse:
    segment = _static(workspace, segment_id)
    contact_id = to_int(request.POST.get("contact_id"))
    ids = list(
        visible_contacts(workspace, actor).filter(pk=contact_id).values_list("pk", flat=True)
    )
    result = actions.static_members_change(
        workspace=workspace, actor=actor, segment=segment, remove=ids
    )
    if result["exited"]:
        messages.success(request, _("Removed from the segment."))
    return redirect(reverse("console:segment", args=[workspace.slug, segment.pk]) + "#members")


@workspace_view("segments.manage")
@require_POST
def from_selection(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """The contacts ticked on the contact list into a static segment: an existing one, or a
    new one named in the form. htmx gets the refreshed picker with the outcome."""
    ids = [i for i in map(to_int, request.POST.getlist("ids")) if i]
    visible = list(
        visible_contacts(workspace, actor).filter(pk__in=ids).values_list("pk", flat=True)
    )
    target_id = to_int(request.POST.get("segment_id"))
    name = request.POST.get("name", "").strip()
    segment, notice, error = None, "", None
    try:
        if not visible:
            raise invalid(_("Select at least one contact."))
        if target_id:
            segment = _static(workspace, target_id)
            result = actions.static_members_change(
                workspace=workspace, actor=actor, segment=segment, add=visible
            )
            added = result["entered"]
        else:
            if not name:
                raise invalid(_("Choose a static segment or name a new one."))
            segment = actions.segment_create(
                workspace=workspace,
                actor=actor,
                name=name,
                kind=SegmentKind.STATIC,
                contact_ids=visible,
            )
            added = segment.size
        notice = _("%(n)s of %(selected)s selected contacts added to %(name)s.") % {
            "n": added,
            "selected": len(visible),
            "name": segment.name,
        }
    except SiyuError as exc:
        error = exc
    if not request.htmx:
        if error is not None:
            messages.error(request, error_text(error))
            return redirect("console:contacts", workspace.slug)
        messages.success(request, notice)
        return redirect("console:segment", workspace.slug, segment.pk)
    context = {
        "static_segments": static_segment_choices(workspace),
        "notice": notice,
        "added_to": segment if error is None else None,
        "error": error_text(error) if error else "",
        "name": name if error else "",
    }
    status = error.status if error else 200
    return render_ws(request, "console/segments/_add_to_static.html", context, status=status)

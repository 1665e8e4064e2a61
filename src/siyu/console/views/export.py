"""Export the contact list's current filter to CSV / Excel (a background job), follow its
progress and download the file. Every export and every download is audited. Once the file is
past its retention (deleted by `exports_cleanup`) the page says so and the download answers
410 Gone with the same message."""

import zoneinfo

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.accounts.permissions import Role
from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import form_error, invalid, is_partial, render_ws
from siyu.console.views.contacts import filter_from, filter_query
from siyu.contacts.export import (
    CONTENT_TYPES,
    FORMATS,
    KIND,
    contacts_export_downloaded,
    contacts_export_start,
    export_path,
)
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Job, Workspace

# Roles that may follow and download any export of the workspace; others only their own.
SEE_ALL_EXPORTS = {Role.OWNER, Role.ADMIN}


def get_export_for(workspace: Workspace, actor: Actor, job_id: int) -> Job:
    jobs = Job.objects.filter(workspace=workspace, pk=job_id, kind=KIND)
    if actor.role not in SEE_ALL_EXPORTS:
        jobs = jobs.filter(created_by=actor.user) if actor.user else jobs.none()
    job = jobs.first()
    if job is None:
        raise Http404
    return job


def _expired(job: Job) -> bool:
    """A finished export whose file is no longer there to download."""
    return job.status == Job.Status.DONE and export_path(job) is None


@workspace_view("contacts.export")
@require_POST
def contact_export(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    flt = filter_from(request.POST)
    fmt = request.POST.get("format", "csv")
    try:
        if fmt not in FORMATS:
            raise invalid(_("Choose CSV or Excel."))
        job = contacts_export_start(
            workspace=workspace,
            actor=actor,
            flt=flt,
            fmt=fmt,
            with_pii=request.POST.get("with_pii") == "1",
        )
    except SiyuError as exc:
        if request.htmx:
            return form_error(request, exc, "export-error")
        messages.error(request, error_text(exc))
        query = filter_query(flt)
        list_url = reverse("console:contacts", args=[workspace.slug])
        return redirect(list_url + (f"?{query}" if query else ""))
    if request.htmx:
        return render_ws(request, "console/contacts/_export_job.html", {"job": job})
    return redirect("console:contact_export_status", workspace.slug, job.pk)


@workspace_view("contacts.export")
@require_GET
def export_status(
    request: HttpRequest, workspace: Workspace, actor: Actor, job_id: int
) -> HttpResponse:
    job = get_export_for(workspace, actor, job_id)
    context = {"job": job, "expired": _expired(job)}
    if is_partial(request, f"export-{job.pk}"):
        return render_ws(request, "console/contacts/_export_job.html", context)
    return render_ws(request, "console/contacts/export.html", context)


@workspace_view("contacts.export")
@require_GET
def export_download(
    request: HttpRequest, workspace: Workspace, actor: Actor, job_id: int
) -> HttpResponse:
    job = get_export_for(workspace, actor, job_id)
    if job.status != Job.Status.DONE:
        raise Http404
    path = export_path(job)
    if path is None:  # deleted after its retention (or gone from the disk): export again
        context = {"job": job, "expired": True}
        return render_ws(request, "console/contacts/export.html", context, status=410)
    fmt = job.params.get("format", "csv")
    contacts_export_downloaded(workspace=workspace, actor=actor, job=job)
    stamp = job.created_at.astimezone(zoneinfo.ZoneInfo(workspace.timezone))
    filename = f"客户导出-{stamp:%Y%m%d-%H%M}.{fmt}"
    # FileResponse writes a non-ASCII name as RFC 5987 `filename*=utf-8''...`.
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - closed by the response
        as_attachment=True,
        filename=filename,
        content_type=CONTENT_TYPES[fmt],
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response

"""Progress of a background job (bulk tagging, later imports and exports), polled by htmx."""

from django.http import Http404, HttpRequest, HttpResponse

from siyu.accounts.permissions import Role
from siyu.console.access import workspace_view
from siyu.console.helpers import is_partial, render_ws
from siyu.core.audit import Actor
from siyu.core.models import Job, Workspace

# Roles that may follow any job of the workspace; others only the jobs they started.
SEE_ALL_JOBS = {Role.OWNER, Role.ADMIN}


@workspace_view("dashboard.view")
def job_progress(
    request: HttpRequest, workspace: Workspace, actor: Actor, job_id: int
) -> HttpResponse:
    jobs = Job.objects.filter(workspace=workspace, pk=job_id)
    if actor.role not in SEE_ALL_JOBS:
        jobs = jobs.filter(created_by=actor.user) if actor.user else jobs.none()
    job = jobs.first()
    if job is None:
        raise Http404
    if is_partial(request, f"job-{job.pk}"):
        return render_ws(request, "console/_job.html", {"job": job})
    return render_ws(request, "console/contacts/job.html", {"job": job})

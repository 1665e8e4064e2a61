"""Task entry points of the segments app: take ids, call into the app, safe to run twice."""

from django_tasks import task


@task()
def refresh_segments(workspace_id: int) -> dict:
    """Scores and every rule-based segment of the workspace (refresh.py)."""
    from siyu.core.models import Workspace
    from siyu.segments.refresh import refresh_workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {}
    result = refresh_workspace(workspace)
    return {k: v for k, v in result.items() if k != "refreshed"}


@task()
def fit_clv(workspace_id: int, requested_by: str = "nightly CLV fit") -> dict:
    """Refit the workspace's BG/NBD + Gamma-Gamma model and write each contact's CLV
    (`requested_by` names who asked, for the audit log)."""
    from siyu.core.audit import Actor
    from siyu.core.models import Workspace
    from siyu.segments.clv_actions import clv_fit_workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {}
    fit = clv_fit_workspace(workspace, actor=Actor.system(requested_by))
    return {"fit_id": fit.pk, "error": fit.error}

"""The console's one way into a workspace page: resolve the workspace from the URL, check
membership (404 for outsiders, no hint it exists) and the permission (403 page)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from siyu.accounts.access import can, staff_actor
from siyu.core.errors import NotFound, PermissionDenied, SiyuError
from siyu.core.models import Workspace


def workspace_view(perm: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
            workspace = Workspace.objects.filter(slug=slug).first()
            if workspace is None:
                raise Http404
            try:
                actor = staff_actor(request, workspace)
            except NotFound as exc:
                raise Http404 from exc
            request.workspace, request.actor = workspace, actor
            if not can(actor, perm):
                return render(request, "console/forbidden.html", {"perm": perm}, status=403)
            try:
                return view(request, workspace, actor, *args, **kwargs)
            except NotFound as exc:
                raise Http404 from exc
            except PermissionDenied as exc:
                return render(request, "console/forbidden.html", {"perm": exc.message}, status=403)

        return wrapper

    return decorator


def error_response(request: HttpRequest, exc: SiyuError) -> HttpResponse:
    """An inline error for htmx forms (swapped into the form's error slot)."""
    return render(request, "console/_error.html", {"error": exc}, status=exc.status)

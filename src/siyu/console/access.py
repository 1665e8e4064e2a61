"""The console's one way into a workspace page: resolve the workspace from the URL, check
membership (404 for outsiders, no hint it exists) and the permission (403 page)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

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
                return render(
                    request, "console/forbidden.html", {"perm": error_text(exc)}, status=403
                )

        return wrapper

    return decorator


def error_text(exc: SiyuError) -> str:
    """The error in the console's language. A translation of the whole message (with its
    field, e.g. "name: must not be empty") wins; otherwise the translated template."""
    whole = gettext(exc.message)
    return whole if whole != exc.message else exc.localized()


def error_response(request: HttpRequest, exc: SiyuError) -> HttpResponse:
    """An inline error for htmx forms (swapped into the form's error slot)."""
    return render(request, "console/_error.html", {"message": error_text(exc)}, status=exc.status)

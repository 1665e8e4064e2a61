from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse

from siyu.accounts.models import Membership


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


def home(request: HttpRequest):
    """Send a logged-in staff member to their first workspace."""
    if not request.user.is_authenticated:
        return redirect("console:login")
    membership = (
        Membership.objects.filter(staff=request.user)
        .select_related("workspace")
        .order_by("id")
        .first()
    )
    if membership is None:
        return render(request, "console/no_workspace.html")
    return redirect(reverse("console:dashboard", args=[membership.workspace.slug]))

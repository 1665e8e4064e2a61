"""Console URLs. Every workspace page lives under /w/<slug>/."""

from django.contrib.auth import views as auth_views
from django.urls import path

from siyu.console import (
    urls_admin,
    urls_campaigns,
    urls_data,
    urls_imports,
    urls_messaging,
    urls_pool,
    urls_segments,
)
from siyu.console.views import auth

app_name = "console"

urlpatterns = [
    path("", auth.home, name="home"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    *urls_pool.urlpatterns,
    *urls_admin.urlpatterns,
    *urls_data.urlpatterns,
    *urls_imports.urlpatterns,
    *urls_segments.urlpatterns,
    *urls_messaging.urlpatterns,
    *urls_campaigns.urlpatterns,
]

"""Dashboard and the customer pool (contact list, contact detail)."""

from django.urls import path

from siyu.console.views import dashboard

urlpatterns = [
    path("w/<slug:slug>/", dashboard.dashboard, name="dashboard"),
]

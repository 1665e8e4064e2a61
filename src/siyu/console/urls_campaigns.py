"""Campaigns (营销): broadcasts (群发) with their composer, guardrail preview, send and run
reports; journeys (旅程) with the builder, its drawing's edits, status and report."""

from django.urls import path

from siyu.console.views import campaigns_broadcast_send as sending
from siyu.console.views import campaigns_broadcasts as broadcasts
from siyu.console.views import campaigns_journeys as journeys
from siyu.console.views import campaigns_reports as reports

C = "w/<slug:slug>/campaigns/"
B = C + "broadcasts/<int:broadcast_id>/"
J = C + "journeys/<int:journey_id>/"

urlpatterns = [
    path(C + "broadcasts/", broadcasts.broadcast_list, name="broadcasts"),
    path(C + "broadcasts/new/", broadcasts.broadcast_new, name="broadcast_new"),
    path(C + "broadcasts/templates/", broadcasts.broadcast_templates, name="broadcast_templates"),
    path(B, broadcasts.broadcast_detail, name="broadcast"),
    path(B + "save/", broadcasts.broadcast_save, name="broadcast_save"),
    path(B + "preview/", broadcasts.broadcast_preview, name="broadcast_preview"),
    path(B + "send/", sending.broadcast_send, name="broadcast_send"),
    path(B + "cancel/", sending.broadcast_cancel, name="broadcast_cancel"),
    path(B + "runs/<int:number>/", reports.run_report, name="broadcast_run"),
    path(C + "journeys/", journeys.journey_list, name="journeys"),
    path(C + "journeys/new/", journeys.journey_new, name="journey_new"),
    path(C + "journeys/flow/", journeys.journey_flow, name="journey_flow"),
    path(J, journeys.journey_builder, name="journey"),
    path(J + "status/", journeys.journey_status, name="journey_status"),
    path(J + "report/", reports.journey_report_page, name="journey_report"),
]

"""Imports of contacts and orders: the list, the three-step wizard and the error report."""

from django.urls import path

from siyu.console.views import imports

W = "w/<slug:slug>/imports/"

urlpatterns = [
    path(W, imports.import_list, name="imports"),
    path(W + "new/", imports.import_new, name="import_new"),
    path(W + "new/<str:token>/", imports.import_mapping, name="import_mapping"),
    path(W + "template/<str:kind>.csv", imports.import_template, name="import_template"),
    path(W + "<int:job_id>/", imports.import_status, name="import_status"),
    path(W + "<int:job_id>/report/", imports.import_report, name="import_report"),
]

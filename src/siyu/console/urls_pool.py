"""Dashboard and the customer pool (contact list, contact detail)."""

from django.urls import path

from siyu.console.views import contact_activity as activity
from siyu.console.views import contact_detail as detail
from siyu.console.views import contacts, dashboard, export, jobs

C = "w/<slug:slug>/contacts/<int:contact_id>/"

urlpatterns = [
    path("w/<slug:slug>/", dashboard.dashboard, name="dashboard"),
    path("w/<slug:slug>/contacts/", contacts.contact_list, name="contacts"),
    path("w/<slug:slug>/contacts/count/", contacts.contact_count, name="contacts_count"),
    path("w/<slug:slug>/contacts/new/", contacts.contact_new, name="contact_new"),
    path("w/<slug:slug>/contacts/bulk-tag/", contacts.contact_bulk_tag, name="contacts_bulk_tag"),
    path("w/<slug:slug>/contacts/export/", export.contact_export, name="contacts_export"),
    path(
        "w/<slug:slug>/exports/<int:job_id>/",
        export.export_status,
        name="contact_export_status",
    ),
    path(
        "w/<slug:slug>/exports/<int:job_id>/download/",
        export.export_download,
        name="contact_export_download",
    ),
    path(C, detail.contact_detail, name="contact"),
    path(C + "timeline/", detail.contact_timeline, name="contact_timeline"),
    path(C + "orders/", activity.contact_orders, name="contact_orders"),
    path(C + "events/", activity.contact_events, name="contact_events"),
    path(C + "edit/", detail.contact_edit, name="contact_edit"),
    path(C + "owner/", detail.contact_assign, name="contact_assign"),
    path(C + "tags/", detail.contact_tags, name="contact_tags"),
    path(C + "consent/", detail.contact_consent, name="contact_consent"),
    path(C + "identities/", detail.identity_add, name="identity_add"),
    path(
        C + "identities/<int:identity_id>/remove/",
        detail.identity_remove,
        name="identity_remove",
    ),
    path(
        C + "identities/<int:identity_id>/reveal/",
        detail.identity_reveal,
        name="identity_reveal",
    ),
    path(C + "merge/", detail.merge_search, name="contact_merge_search"),
    path(C + "merge/confirm/", detail.contact_merge, name="contact_merge"),
    path(C + "delete/", detail.contact_delete, name="contact_delete"),
    path("w/<slug:slug>/jobs/<int:job_id>/", jobs.job_progress, name="job"),
]

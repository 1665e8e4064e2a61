"""Workspace administration: tags, staff, API keys, audit log, settings."""

from django.urls import path

from siyu.console.views import admin_audit, admin_keys, admin_settings, admin_staff, admin_tags

W = "w/<slug:slug>/"

urlpatterns = [
    # tags and tag groups
    path(W + "tags/", admin_tags.tags, name="tags"),
    path(W + "tags/groups/new/", admin_tags.group_create, name="taggroup_create"),
    path(W + "tags/groups/<int:group_id>/rename/", admin_tags.group_rename, name="taggroup_rename"),
    path(W + "tags/groups/<int:group_id>/delete/", admin_tags.group_delete, name="taggroup_delete"),
    path(W + "tags/groups/<int:group_id>/tags/new/", admin_tags.tag_create, name="tag_create"),
    path(W + "tags/<int:tag_id>/rename/", admin_tags.tag_rename, name="tag_rename"),
    path(W + "tags/<int:tag_id>/delete/", admin_tags.tag_delete, name="tag_delete"),
    # staff and roles
    path(W + "staff/", admin_staff.staff, name="staff"),
    path(W + "staff/add/", admin_staff.staff_add, name="staff_add"),
    path(W + "staff/<int:membership_id>/role/", admin_staff.staff_role, name="staff_role"),
    path(W + "staff/<int:membership_id>/remove/", admin_staff.staff_remove, name="staff_remove"),
    # API keys
    path(W + "api-keys/", admin_keys.apikeys, name="apikeys"),
    path(W + "api-keys/new/", admin_keys.apikey_create, name="apikey_create"),
    path(W + "api-keys/<int:key_id>/revoke/", admin_keys.apikey_revoke, name="apikey_revoke"),
    # audit log
    path(W + "audit/", admin_audit.audit, name="audit"),
    # settings and the custom attribute schema
    path(W + "settings/", admin_settings.workspace_settings, name="settings"),
    path(W + "settings/workspace/", admin_settings.workspace_save, name="settings_workspace"),
    path(W + "settings/attributes/new/", admin_settings.attribute_define, name="attribute_define"),
    path(
        W + "settings/attributes/<int:definition_id>/delete/",
        admin_settings.attribute_delete,
        name="attribute_delete",
    ),
]

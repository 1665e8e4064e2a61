"""Workspace administration: tags, staff, API keys, audit log, settings."""

urlpatterns: list = []

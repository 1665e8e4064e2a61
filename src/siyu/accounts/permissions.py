"""The permission matrix (docs/permissions.md is generated from the same table by a test
that compares them). Enforced server-side in actions' callers through `require`."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    OPERATOR = "operator", _("Operator")
    ANALYST = "analyst", _("Analyst")
    AGENT = "agent", _("Agent")


O, A, P, N, G = Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.AGENT
ALL = frozenset(Role)

# permission -> roles that hold it. Agents hold contact permissions only for contacts they own
# (see OWN_ONLY); everything else is workspace-wide.
MATRIX: dict[str, frozenset[Role]] = {
    "dashboard.view": ALL,
    "contacts.view": ALL,
    "contacts.create": frozenset({O, A, P, G}),
    "contacts.edit": frozenset({O, A, P, G}),
    "contacts.tag": frozenset({O, A, P, G}),
    "contacts.consent": frozenset({O, A, P, G}),
    "contacts.assign": frozenset({O, A, P}),
    "contacts.merge": frozenset({O, A, P}),
    "contacts.delete": frozenset({O, A}),
    "contacts.bulk": frozenset({O, A, P}),
    "contacts.export": frozenset({O, A, P, N}),
    "pii.reveal": frozenset({O, A}),
    "tags.manage": frozenset({O, A, P}),
    "attributes.manage": frozenset({O, A}),
    "staff.view": frozenset({O, A}),
    "staff.manage": frozenset({O, A}),
    "apikeys.manage": frozenset({O, A}),
    "settings.manage": frozenset({O, A}),
    "audit.view": frozenset({O, A}),
}

# Roles whose contact permissions are limited to the contacts they own.
OWN_ONLY = frozenset({G})

DESCRIPTIONS: dict[str, str] = {
    "dashboard.view": "See the dashboard (agents: numbers over their own contacts)",
    "contacts.view": "List, search and open contacts",
    "contacts.create": "Create contacts",
    "contacts.edit": "Edit profile fields, attributes and identities",
    "contacts.tag": "Add and remove tags on contacts",
    "contacts.consent": "Record consent given or withdrawn",
    "contacts.assign": "Change a contact's owner (advisor)",
    "contacts.merge": "Merge two contacts into one",
    "contacts.delete": "Delete contacts",
    "contacts.bulk": "Bulk-tag many contacts at once",
    "contacts.export": "Export contacts (audited)",
    "pii.reveal": "Reveal a masked phone or email (audited)",
    "tags.manage": "Create, rename and delete tags and tag groups",
    "attributes.manage": "Define custom attributes (the attribute schema)",
    "staff.view": "See staff and their roles",
    "staff.manage": "Invite staff, change roles, deactivate (only owners grant owner)",
    "apikeys.manage": "Create and revoke API keys",
    "settings.manage": "Change workspace settings",
    "audit.view": "Read and filter the audit log",
}


def has_perm(role: str, perm: str) -> bool:
    return Role(role) in MATRIX[perm]


def is_own_only(role: str) -> bool:
    return Role(role) in OWN_ONLY

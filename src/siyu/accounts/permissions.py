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


OWN, ADM, OPS, ANA, AGT = Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.AGENT
ALL = frozenset(Role)

# permission -> roles that hold it. Agents hold contact permissions only for contacts they own
# (see OWN_ONLY); everything else is workspace-wide.
MATRIX: dict[str, frozenset[Role]] = {
    "dashboard.view": ALL,
    "contacts.view": ALL,
    "contacts.create": frozenset({OWN, ADM, OPS, AGT}),
    "contacts.edit": frozenset({OWN, ADM, OPS, AGT}),
    "contacts.tag": frozenset({OWN, ADM, OPS, AGT}),
    "contacts.consent": frozenset({OWN, ADM, OPS, AGT}),
    "contacts.assign": frozenset({OWN, ADM, OPS}),
    "contacts.merge": frozenset({OWN, ADM, OPS}),
    "contacts.delete": frozenset({OWN, ADM}),
    "contacts.bulk": frozenset({OWN, ADM, OPS}),
    "contacts.export": frozenset({OWN, ADM, OPS, ANA}),
    "contacts.import": frozenset({OWN, ADM, OPS}),
    "orders.import": frozenset({OWN, ADM, OPS}),
    "pii.reveal": frozenset({OWN, ADM}),
    "tags.manage": frozenset({OWN, ADM, OPS}),
    "attributes.manage": frozenset({OWN, ADM}),
    "staff.view": frozenset({OWN, ADM}),
    "staff.manage": frozenset({OWN, ADM}),
    "apikeys.manage": frozenset({OWN, ADM}),
    "settings.manage": frozenset({OWN, ADM}),
    "audit.view": frozenset({OWN, ADM}),
    "segments.view": ALL,
    "segments.manage": frozenset({OWN, ADM, OPS}),
    "scoring.manage": frozenset({OWN, ADM}),
    "messaging.view": frozenset({OWN, ADM, OPS, ANA}),
    "messaging.manage": frozenset({OWN, ADM, OPS}),
    "channels.manage": frozenset({OWN, ADM}),
    "campaigns.view": frozenset({OWN, ADM, OPS, ANA}),
    "campaigns.manage": frozenset({OWN, ADM, OPS}),
}

# Roles whose contact permissions are limited to the contacts they own.
OWN_ONLY = frozenset({AGT})

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
    "contacts.import": "Import contacts from CSV / Excel (audited)",
    "orders.import": "Import orders from CSV / Excel (audited)",
    "pii.reveal": "Reveal a masked phone or email (audited)",
    "tags.manage": "Create, rename and delete tags and tag groups",
    "attributes.manage": "Define custom attributes (the attribute schema)",
    "staff.view": "See staff and their roles",
    "staff.manage": "Add and remove staff, change roles (only owners grant owner)",
    "apikeys.manage": "Create and revoke API keys",
    "settings.manage": "Change workspace settings",
    "audit.view": "Read and filter the audit log",
    "segments.view": "See segments, their sizes and members (agents: their own contacts)",
    "segments.manage": "Create, edit, refresh and archive segments; set static members",
    "scoring.manage": "Change lifecycle, value tier and RFM thresholds; fit the CLV model",
    "messaging.view": "See channels (never their credentials), templates and the outbox",
    "messaging.manage": "Write and preview message templates; set frequency caps and quiet hours",
    "channels.manage": "Configure channels and their credentials; send a test message (audited)",
    "campaigns.view": "See broadcasts, their audience previews and reports",
    "campaigns.manage": "Create, send, schedule and cancel broadcasts",
}


def has_perm(role: str, perm: str) -> bool:
    return Role(role) in MATRIX[perm]


def is_own_only(role: str) -> bool:
    return Role(role) in OWN_ONLY

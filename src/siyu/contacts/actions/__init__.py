"""Every write to the customer pool. `<noun>_<verb>(*, workspace, actor, ...)`, atomic,
with its audit and timeline rows in the same transaction. Callers authorise first."""

from siyu.contacts.actions.attributes import attribute_define, attribute_delete
from siyu.contacts.actions.consent import consent_set
from siyu.contacts.actions.contact import (
    contact_assign,
    contact_create,
    contact_delete,
    contact_update,
)
from siyu.contacts.actions.identity import identity_add, identity_remove, identity_reveal
from siyu.contacts.actions.merge import contacts_merge
from siyu.contacts.actions.tags import (
    contacts_tag,
    tag_create,
    tag_delete,
    tag_group_create,
    tag_group_delete,
    tag_group_update,
    tag_update,
)

__all__ = [
    "attribute_define",
    "attribute_delete",
    "consent_set",
    "contact_assign",
    "contact_create",
    "contact_delete",
    "contact_update",
    "contacts_merge",
    "contacts_tag",
    "identity_add",
    "identity_remove",
    "identity_reveal",
    "tag_create",
    "tag_delete",
    "tag_group_create",
    "tag_group_delete",
    "tag_group_update",
    "tag_update",
]

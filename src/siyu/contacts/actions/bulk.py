"""Creating many contacts at once (imports): the set-operation twin of `contact_create`.

It writes exactly the rows `contact_create` writes for each contact — the contact, its
identities, its tags, the "created" and "tag_added" timeline rows and the "contact.create"
audit row — with one INSERT per table for the whole list. Callers pass checked values
(`clean_profile`, `clean_attributes`, tags and owner of the workspace, normalised
identities). An identity another contact holds (or two drafts sharing one) breaks the
unique constraint: IntegrityError, nothing written; `contact_create` row by row then names
the holder."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.accounts.models import Membership
from siyu.accounts.permissions import is_own_only
from siyu.contacts.actions.contact import IdentityInput, jsonable
from siyu.contacts.actions.identity import build_identity
from siyu.contacts.models import Contact, ContactTag, Identity, Tag, TimelineEntry
from siyu.core.audit import Actor, audit_many
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace


@dataclass
class ContactDraft:
    profile: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    identities: list[IdentityInput] = field(default_factory=list)
    tag_ids: list[int] = field(default_factory=list)
    owner_id: int | None = None


@transaction.atomic
def contacts_create_many(
    *, workspace: Workspace, actor: Actor, drafts: Sequence[ContactDraft]
) -> list[Contact]:
    """The contacts, in the order of `drafts`."""
    if not drafts:
        return []
    tag_ids = {t for d in drafts for t in d.tag_ids}
    tags = {t.pk: t for t in Tag.objects.filter(workspace=workspace, pk__in=sorted(tag_ids))}
    if len(tags) != len(tag_ids):
        raise ValidationError(
            "tag_ids", "unknown tag ids %(ids)s", params={"ids": sorted(tag_ids - set(tags))}
        )
    owner_ids = {d.owner_id for d in drafts} - {None}
    members = set(
        Membership.objects.filter(workspace=workspace, staff_id__in=owner_ids).values_list(
            "staff_id", flat=True
        )
    )
    if owner_ids - members:
        raise ValidationError("owner_id", "not a staff member of this workspace")
    default_owner = actor.user.pk if actor.user is not None and is_own_only(actor.role) else None
    now = timezone.now()
    contacts = [
        Contact(
            workspace=workspace,
            owner_id=d.owner_id or default_owner,
            attributes={k: v for k, v in d.attributes.items() if v is not None},
            first_seen_at=now,
            last_seen_at=now,
            created_at=now,
            updated_at=now,
            **d.profile,
        )
        for d in drafts
    ]
    Contact.objects.bulk_create(contacts, batch_size=500)
    Identity.objects.bulk_create(
        [
            build_identity(workspace, c, i.kind, i.value, i.app_id, field=f"identities[{n}].value")
            for c, d in zip(contacts, drafts, strict=True)
            for n, i in enumerate(d.identities)
        ],
        batch_size=500,
    )
    ContactTag.objects.bulk_create(
        [
            ContactTag(workspace=workspace, contact=c, tag_id=t, created_at=now)
            for c, d in zip(contacts, drafts, strict=True)
            for t in dict.fromkeys(d.tag_ids)
        ],
        batch_size=1000,
    )
    timeline = []
    for c, d in zip(contacts, drafts, strict=True):
        timeline.append(
            TimelineEntry(
                workspace=workspace,
                contact=c,
                kind="created",
                data={"source": c.source},
                actor_label=actor.label,
                created_at=now,
            )
        )
        if d.tag_ids:
            timeline.append(
                TimelineEntry(
                    workspace=workspace,
                    contact=c,
                    kind="tag_added",
                    data={"tags": [tags[t].name for t in dict.fromkeys(d.tag_ids)]},
                    actor_label=actor.label,
                    created_at=now,
                )
            )
    TimelineEntry.objects.bulk_create(timeline, batch_size=1000)
    audit_many(
        workspace=workspace,
        actor=actor,
        action="contact.create",
        object_type="contact",
        entries=[
            (
                c.pk,
                None,
                {
                    **jsonable(d.profile),
                    "attributes": c.attributes,
                    "tags": list(dict.fromkeys(d.tag_ids)),
                },
            )
            for c, d in zip(contacts, drafts, strict=True)
        ],
    )
    return contacts

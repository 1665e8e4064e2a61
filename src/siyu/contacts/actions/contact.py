import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.accounts.models import Membership, Staff
from siyu.accounts.permissions import is_own_only
from siyu.contacts.actions.identity import build_identity, save_identity
from siyu.contacts.actions.tags import tags_for_ids
from siyu.contacts.attributes import clean_attributes
from siyu.contacts.models import Contact, ContactTag, Gender
from siyu.contacts.timeline import timeline_add
from siyu.core.audit import Actor, audit
from siyu.core.errors import NotFound, ValidationError
from siyu.core.models import Workspace

PROFILE_FIELDS = ("name", "gender", "birthday", "province", "city", "source")
MAX_LENGTHS = {"name": 120, "province": 40, "city": 40, "source": 40}


@dataclass(frozen=True)
class IdentityInput:
    kind: str
    value: str
    app_id: str = ""


def clean_profile(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate profile fields, naming the field on error."""
    cleaned: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in PROFILE_FIELDS:
            raise ValidationError(key, "not a profile field")
        if key == "gender":
            value = value or Gender.UNKNOWN
            if value not in Gender.values:
                raise ValidationError(
                    "gender",
                    "expected one of %(choices)s",
                    params={"choices": ", ".join(Gender.values)},
                )
        elif key == "birthday":
            if value in (None, ""):
                value = None
            elif not isinstance(value, datetime.date):
                try:
                    value = datetime.date.fromisoformat(str(value))
                except ValueError as exc:
                    raise ValidationError("birthday", "expected a date YYYY-MM-DD") from exc
            if value and value > timezone.localdate():
                raise ValidationError("birthday", "is in the future")
        else:
            value = (value or "").strip()
            if len(value) > MAX_LENGTHS[key]:
                raise ValidationError(
                    key, "longer than %(max)s characters", params={"max": MAX_LENGTHS[key]}
                )
        cleaned[key] = value
    return cleaned


def resolve_owner(workspace: Workspace, owner_id: int | None) -> Staff | None:
    if owner_id is None:
        return None
    membership = (
        Membership.objects.select_related("staff")
        .filter(workspace=workspace, staff_id=owner_id)
        .first()
    )
    if membership is None:
        raise ValidationError("owner_id", "not a staff member of this workspace")
    return membership.staff


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Dates as ISO text, for audit rows."""
    return {k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in values.items()}


@transaction.atomic
def contact_create(
    *,
    workspace: Workspace,
    actor: Actor,
    profile: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
    identities: Iterable[IdentityInput] = (),
    tag_ids: Iterable[int] = (),
    owner_id: int | None = None,
) -> Contact:
    profile = clean_profile(profile or {})
    attrs = {
        k: v for k, v in clean_attributes(workspace, attributes or {}).items() if v is not None
    }
    owner = resolve_owner(workspace, owner_id)
    if owner is None and is_own_only(actor.role):
        owner = actor.user  # an agent's new contact is the agent's own
    contact = Contact.objects.create(workspace=workspace, owner=owner, attributes=attrs, **profile)
    for index, ident in enumerate(identities):
        save_identity(
            build_identity(
                workspace,
                contact,
                ident.kind,
                ident.value,
                ident.app_id,
                field=f"identities[{index}].value",
            ),
            actor,
        )
    tags = tags_for_ids(workspace, tag_ids)
    ContactTag.objects.bulk_create(
        [ContactTag(workspace=workspace, contact=contact, tag=t) for t in tags]
    )
    timeline_add(contact, "created", actor, source=contact.source)
    if tags:
        timeline_add(contact, "tag_added", actor, tags=[t.name for t in tags])
    audit(
        workspace=workspace,
        actor=actor,
        action="contact.create",
        obj=contact,
        after={**jsonable(profile), "attributes": attrs, "tags": [t.pk for t in tags]},
    )
    return contact


def apply_changes(
    contact: Contact, profile: dict[str, Any], attrs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set on the in-memory contact what differs from cleaned profile fields and attributes
    (an attribute set to None is removed); (before, after) of what changed, keyed by field
    or `attributes.<key>`. Used by contact_update and by identity resolution's replay."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in profile.items():
        if getattr(contact, key) != value:
            before[key], after[key] = getattr(contact, key), value
            setattr(contact, key, value)
    merged = dict(contact.attributes)
    for key, value in attrs.items():
        if merged.get(key) != value:
            before[f"attributes.{key}"] = merged.get(key)
            after[f"attributes.{key}"] = value
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
    contact.attributes = merged
    return before, after


@transaction.atomic
def contact_update(
    *,
    workspace: Workspace,
    actor: Actor,
    contact: Contact,
    profile: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
) -> Contact:
    profile = clean_profile(profile or {})
    attrs = clean_attributes(workspace, attributes or {})
    contact = Contact.objects.select_for_update().get(pk=contact.pk, workspace=workspace)
    before, after = apply_changes(contact, profile, attrs)
    if not after:
        return contact
    contact.updated_at = timezone.now()
    contact.save()
    timeline_add(contact, "updated", actor, fields=sorted(after))
    audit(
        workspace=workspace,
        actor=actor,
        action="contact.update",
        obj=contact,
        before=jsonable(before),
        after=jsonable(after),
    )
    return contact


@transaction.atomic
def contact_assign(
    *, workspace: Workspace, actor: Actor, contact: Contact, owner_id: int | None
) -> Contact:
    owner = resolve_owner(workspace, owner_id)
    contact = Contact.objects.select_for_update().get(pk=contact.pk, workspace=workspace)
    if contact.owner_id == (owner.pk if owner else None):
        return contact
    before = contact.owner_id
    contact.owner = owner
    contact.updated_at = timezone.now()
    contact.save(update_fields=["owner", "updated_at"])
    timeline_add(contact, "owner_changed", actor, owner=owner.display_name if owner else "")
    audit(
        workspace=workspace,
        actor=actor,
        action="contact.assign",
        obj=contact,
        before={"owner_id": before},
        after={"owner_id": contact.owner_id},
    )
    return contact


@transaction.atomic
def contact_delete(*, workspace: Workspace, actor: Actor, contact: Contact) -> None:
    contact = Contact.objects.select_for_update().filter(pk=contact.pk, workspace=workspace).first()
    if contact is None:  # deleted meanwhile (a double submit): nothing to do twice
        raise NotFound("contact not found")
    audit(
        workspace=workspace,
        actor=actor,
        action="contact.delete",
        obj=contact,
        before={
            "name": contact.name,
            "source": contact.source,
            "identities": list(contact.identities.values_list("kind", "masked")),
        },
    )
    contact.delete()

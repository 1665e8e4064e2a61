from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from siyu.contacts.models import Consent, Contact, ContactTag, Identity, TimelineEntry
from siyu.contacts.timeline import timeline_add
from siyu.core.audit import Actor, audit
from siyu.core.errors import NotFound, ValidationError
from siyu.core.models import Workspace

FILLABLE = ("name", "birthday", "province", "city", "source")

# Other apps move what they own of `other` to `survivor` (tracking: its events) through a hook,
# called inside the merge's transaction before `other` is deleted: fn(workspace, survivor,
# other). Registered once, in the app's AppConfig.ready().
MergeHook = Callable[[Workspace, Contact, Contact], None]
MERGE_HOOKS: list[MergeHook] = []


def register_merge_hook(fn: MergeHook) -> MergeHook:
    """Add `fn` to the hooks every merge calls (idempotent: a hook is registered once)."""
    if fn not in MERGE_HOOKS:
        MERGE_HOOKS.append(fn)
    return fn


def _snapshot(contact: Contact) -> dict:
    return {
        "id": contact.pk,
        "name": contact.name,
        "source": contact.source,
        "owner_id": contact.owner_id,
        "attributes": contact.attributes,
        "identities": list(contact.identities.values_list("kind", "masked")),
        "tags": list(contact.contact_tags.values_list("tag__name", flat=True)),
    }


@transaction.atomic
def contacts_merge(
    *, workspace: Workspace, actor: Actor, survivor: Contact, other: Contact
) -> Contact:
    """Fold `other` into `survivor`: identities, tags, consent, attributes and timeline move;
    the survivor's own values win and blanks are filled from the other. `other` is deleted."""
    if survivor.pk == other.pk:
        raise ValidationError("other_id", "cannot merge a contact into itself")
    locked = {
        c.pk: c
        for c in Contact.objects.select_for_update()
        .filter(workspace=workspace, pk__in=[survivor.pk, other.pk])
        .order_by("pk")
    }
    if len(locked) != 2:  # merged or deleted meanwhile (a double submit)
        raise NotFound("contact not found")
    survivor, other = locked[survivor.pk], locked[other.pk]
    before = {"survivor": _snapshot(survivor), "other": _snapshot(other)}

    Identity.objects.filter(workspace=workspace, contact=other).update(contact=survivor)

    survivor_tag_ids = ContactTag.objects.filter(contact=survivor).values("tag_id")
    moving = ContactTag.objects.filter(contact=other).exclude(tag_id__in=survivor_tag_ids)
    moving.update(contact=survivor)

    survivor_consent = {c.channel: c for c in Consent.objects.filter(contact=survivor)}
    for consent in Consent.objects.filter(contact=other):
        mine = survivor_consent.get(consent.channel)
        if mine is None:
            Consent.objects.filter(pk=consent.pk).update(contact=survivor)
        elif consent.recorded_at > mine.recorded_at:  # the newer decision wins
            Consent.objects.filter(pk=mine.pk).update(
                status=consent.status, source=consent.source, recorded_at=consent.recorded_at
            )

    for field in FILLABLE:
        if not getattr(survivor, field) and getattr(other, field):
            setattr(survivor, field, getattr(other, field))
    if survivor.gender == "unknown":
        survivor.gender = other.gender
    survivor.owner_id = survivor.owner_id or other.owner_id
    survivor.attributes = {**other.attributes, **survivor.attributes}
    survivor.first_seen_at = min(survivor.first_seen_at, other.first_seen_at)
    survivor.last_seen_at = max(survivor.last_seen_at, other.last_seen_at)
    survivor.created_at = min(survivor.created_at, other.created_at)
    survivor.updated_at = timezone.now()
    survivor.save()

    TimelineEntry.objects.filter(workspace=workspace, contact=other).update(contact=survivor)
    timeline_add(survivor, "merged", actor, other_id=other.pk, other_name=other.name or "-")
    audit(
        workspace=workspace,
        actor=actor,
        action="contact.merge",
        obj=survivor,
        before=before,
        after=_snapshot(survivor),
    )
    for hook in MERGE_HOOKS:
        hook(workspace, survivor, other)
    other.delete()
    return survivor

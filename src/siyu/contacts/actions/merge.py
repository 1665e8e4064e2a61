from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from siyu.contacts.models import Consent, Contact, ContactTag, Identity, TimelineEntry
from siyu.contacts.timeline import timeline_add
from siyu.core import sqlbulk
from siyu.core.audit import Actor, audit
from siyu.core.errors import NotFound, ValidationError
from siyu.core.models import Workspace

FILLABLE = ("name", "birthday", "province", "city", "source")

# Other apps move what they own of merged-away contacts to their survivors through a hook,
# called inside the merge's transaction before those contacts are deleted:
# fn(workspace, {other id: survivor id, ...}) for one merge (console, API) or many at once
# (identity resolution). Registered once, in the app's AppConfig.ready().
MergeHook = Callable[[Workspace, dict[int, int]], None]
MERGE_HOOKS: list[MergeHook] = []


def register_merge_hook(fn: MergeHook) -> MergeHook:
    """Add `fn` to the hooks every merge calls (idempotent: a hook is registered once)."""
    if fn not in MERGE_HOOKS:
        MERGE_HOOKS.append(fn)
    return fn


def fill_from(survivor: Contact, other: Contact) -> None:
    """The survivor's own values win; its blanks are filled from the other (in memory)."""
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


def move_owned_rows(workspace: Workspace, mapping: dict[int, int]) -> None:
    """Move what merged-away contacts own to their survivors ({other id: survivor id}), with
    a few set-based statements for any number of pairs: identities and timeline rows move;
    a tag moves unless the survivor has it; per consent channel the newest decision wins.
    Then the hooks of other apps. The others are left for the caller to delete."""
    if not mapping:
        return
    pairs = sorted(mapping.items())
    for model in (Identity, TimelineEntry):
        sqlbulk.update_from_values(
            model._meta.db_table,
            [("other", "int"), ("survivor", "int")],
            pairs,
            "contact_id = v.survivor",
            key="contact_id",
        )
    everyone = set(mapping) | set(mapping.values())
    held = set(
        ContactTag.objects.filter(
            workspace=workspace, contact_id__in=set(mapping.values())
        ).values_list("contact_id", "tag_id")
    )
    moves = []
    for pk, contact_id, tag_id in (
        ContactTag.objects.filter(workspace=workspace, contact_id__in=list(mapping))
        .order_by("pk")
        .values_list("pk", "contact_id", "tag_id")
    ):
        target = mapping[contact_id]
        if (target, tag_id) not in held:
            held.add((target, tag_id))
            moves.append((pk, target))
    sqlbulk.update_from_values(
        ContactTag._meta.db_table,
        [("id", "int"), ("survivor", "int")],
        moves,
        "contact_id = v.survivor",
    )
    consents = list(
        Consent.objects.filter(workspace=workspace, contact_id__in=everyone).order_by("pk")
    )
    mine = {(c.contact_id, c.channel): c for c in consents if c.contact_id not in mapping}
    for consent in consents:
        if consent.contact_id not in mapping:
            continue
        target = mapping[consent.contact_id]
        current = mine.get((target, consent.channel))
        if current is None:
            Consent.objects.filter(pk=consent.pk).update(contact_id=target)
            consent.contact_id = target
            mine[(target, consent.channel)] = consent
        elif consent.recorded_at > current.recorded_at:  # the newer decision wins
            Consent.objects.filter(pk=current.pk).update(
                status=consent.status, source=consent.source, recorded_at=consent.recorded_at
            )
            current.status, current.source = consent.status, consent.source
            current.recorded_at = consent.recorded_at
    for hook in MERGE_HOOKS:
        hook(workspace, dict(mapping))


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

    fill_from(survivor, other)
    survivor.updated_at = timezone.now()
    survivor.save()
    move_owned_rows(workspace, {other.pk: survivor.pk})

    timeline_add(survivor, "merged", actor, other_id=other.pk, other_name=other.name or "-")
    audit(
        workspace=workspace,
        actor=actor,
        action="contact.merge",
        obj=survivor,
        before=before,
        after=_snapshot(survivor),
    )
    other.delete()
    return survivor

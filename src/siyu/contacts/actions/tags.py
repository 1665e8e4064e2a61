from collections.abc import Iterable

from django.db import transaction
from django.db.models import Exists, OuterRef

from siyu.contacts.models import Contact, ContactTag, Tag, TagGroup
from siyu.contacts.timeline import timeline_add_many, timeline_untag_all
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import Workspace


def _clean_name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(field, "must not be empty")
    if len(name) > 60:
        raise ValidationError(field, "longer than 60 characters")
    return name


def tags_for_ids(workspace: Workspace, tag_ids: Iterable[int], field: str = "tag_ids") -> list[Tag]:
    ids = list(dict.fromkeys(int(i) for i in tag_ids))
    tags = list(Tag.objects.filter(workspace=workspace, pk__in=ids))
    missing = set(ids) - {t.pk for t in tags}
    if missing:
        raise ValidationError(
            field, "unknown tag ids %(ids)s", params={"ids": sorted(missing)}, ids=sorted(missing)
        )
    return tags


@transaction.atomic
def tag_group_create(
    *, workspace: Workspace, actor: Actor, name: str, color: str = "blue"
) -> TagGroup:
    name = _clean_name(name)
    if TagGroup.objects.filter(workspace=workspace, name=name).exists():
        raise Conflict(
            "tag group %(name)s exists", details={"field": "name"}, params={"name": name}
        )
    group = TagGroup.objects.create(workspace=workspace, name=name, color=color or "blue")
    audit(
        workspace=workspace, actor=actor, action="taggroup.create", obj=group, after={"name": name}
    )
    return group


@transaction.atomic
def tag_group_update(*, workspace: Workspace, actor: Actor, group: TagGroup, name: str) -> TagGroup:
    name = _clean_name(name)
    if TagGroup.objects.filter(workspace=workspace, name=name).exclude(pk=group.pk).exists():
        raise Conflict(
            "tag group %(name)s exists", details={"field": "name"}, params={"name": name}
        )
    before = group.name
    group.name = name
    group.save(update_fields=["name"])
    audit(
        workspace=workspace,
        actor=actor,
        action="taggroup.update",
        obj=group,
        before={"name": before},
        after={"name": name},
    )
    return group


@transaction.atomic
def tag_group_delete(*, workspace: Workspace, actor: Actor, group: TagGroup) -> None:
    audit(
        workspace=workspace,
        actor=actor,
        action="taggroup.delete",
        obj=group,
        before={"name": group.name, "tags": list(group.tags.values_list("name", flat=True))},
    )
    for tag in group.tags.all():
        timeline_untag_all(tag, actor)
    group.delete()


@transaction.atomic
def tag_create(*, workspace: Workspace, actor: Actor, group: TagGroup, name: str) -> Tag:
    name = _clean_name(name)
    if Tag.objects.filter(workspace=workspace, group=group, name=name).exists():
        raise Conflict(
            "tag %(name)s exists in %(group)s",
            details={"field": "name"},
            params={"name": name, "group": group.name},
        )
    tag = Tag.objects.create(workspace=workspace, group=group, name=name)
    audit(
        workspace=workspace,
        actor=actor,
        action="tag.create",
        obj=tag,
        after={"name": name, "group": group.name},
    )
    return tag


@transaction.atomic
def tag_update(*, workspace: Workspace, actor: Actor, tag: Tag, name: str) -> Tag:
    name = _clean_name(name)
    if (
        Tag.objects.filter(workspace=workspace, group_id=tag.group_id, name=name)
        .exclude(pk=tag.pk)
        .exists()
    ):
        raise Conflict("tag %(name)s exists", details={"field": "name"}, params={"name": name})
    before = tag.name
    tag.name = name
    tag.save(update_fields=["name"])
    audit(
        workspace=workspace,
        actor=actor,
        action="tag.update",
        obj=tag,
        before={"name": before},
        after={"name": name},
    )
    return tag


@transaction.atomic
def tag_delete(*, workspace: Workspace, actor: Actor, tag: Tag) -> None:
    audit(
        workspace=workspace,
        actor=actor,
        action="tag.delete",
        obj=tag,
        before={"name": tag.name, "contacts": tag.contact_tags.count()},
    )
    timeline_untag_all(tag, actor)
    tag.delete()


@transaction.atomic
def contacts_tag(
    *,
    workspace: Workspace,
    actor: Actor,
    contact_ids: Iterable[int],
    add: Iterable[int] = (),
    remove: Iterable[int] = (),
) -> dict[str, int]:
    """Add and remove tags on many contacts as set operations (large selections come in
    batches from a job). Contacts outside the workspace are ignored; callers pass only what
    the actor may see. Returns how many (contact, tag) pairs were added and removed."""
    add_tags = tags_for_ids(workspace, add, "add")
    remove_tags = tags_for_ids(workspace, remove, "remove")
    # Lock the tags: two concurrent taggings of the same tag then run one after the other, so
    # the second finds the pairs the first added and writes no second timeline row.
    list(
        Tag.objects.select_for_update()
        .filter(pk__in=[t.pk for t in add_tags + remove_tags])
        .order_by("pk")
    )
    ids = list(dict.fromkeys(int(i) for i in contact_ids))
    contacts = Contact.objects.filter(workspace=workspace, pk__in=ids)
    added = removed = 0
    for tag in add_tags:
        targets = list(
            contacts.filter(
                ~Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag=tag))
            ).values_list("pk", flat=True)
        )
        ContactTag.objects.bulk_create(
            [ContactTag(workspace=workspace, contact_id=cid, tag=tag) for cid in targets],
            batch_size=2000,
            ignore_conflicts=True,
        )
        timeline_add_many(workspace.pk, targets, "tag_added", actor, tags=[tag.name])
        added += len(targets)
    for tag in remove_tags:
        links = ContactTag.objects.filter(workspace=workspace, tag=tag, contact__in=contacts)
        targets = list(links.values_list("contact_id", flat=True))
        links.delete()
        timeline_add_many(workspace.pk, targets, "tag_removed", actor, tags=[tag.name])
        removed += len(targets)
    if added or removed:
        audit(
            workspace=workspace,
            actor=actor,
            action="contacts.tag",
            object_type="contact",
            object_id=ids[0] if len(ids) == 1 else "",
            after={
                "contacts": len(ids),
                "add": [t.name for t in add_tags],
                "remove": [t.name for t in remove_tags],
                "added": added,
                "removed": removed,
            },
        )
    return {"added": added, "removed": removed}

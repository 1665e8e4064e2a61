"""REST endpoints for contacts, tags and the attribute schema (thin: parse, authorise, call)."""

from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from siyu.accounts.access import can
from siyu.accounts.permissions import is_own_only
from siyu.contacts import actions
from siyu.contacts.actions.contact import IdentityInput
from siyu.contacts.models import AttributeDefinition, ContactTag, Identity, Tag, TagGroup
from siyu.contacts.queries import (
    ContactFilter,
    contact_page,
    get_contact_for,
    timeline_for,
    visible_contacts,
)
from siyu.contacts.schemas import (
    AttributeIn,
    AttributeOut,
    BulkTagIn,
    ConsentIn,
    ContactIn,
    ContactList,
    ContactOut,
    ContactPatch,
    IdentityIn,
    IdentityOut,
    MergeIn,
    TagChange,
    TagChangeOut,
    TagGroupIn,
    TagGroupOut,
    TagIn,
    TagOut,
    TagRename,
    TimelineList,
    contact_out,
)
from siyu.core.api import allowed
from siyu.core.errors import NotFound, PermissionDenied

contacts_router = Router(tags=["contacts"])
tags_router = Router(tags=["tags"])
attributes_router = Router(tags=["attributes"])


class ListParams(Schema):
    q: str = ""
    tag_id: int | None = None
    source: str = ""
    owner_id: int | None = None
    sort: str = "-created"
    cursor: str = ""
    limit: int = 50


def _load(request: HttpRequest, contact_id: int):
    contact = get_contact_for(request.workspace, request.actor, contact_id)
    return (
        type(contact)
        .objects.filter(pk=contact.pk)
        .prefetch_related(
            Prefetch("identities", queryset=Identity.objects.order_by("id")),
            Prefetch("contact_tags", queryset=ContactTag.objects.select_related("tag")),
            "consents",
        )
        .get()
    )


@contacts_router.get("", response=ContactList, summary="List or search contacts")
def list_contacts(request: HttpRequest, params: Query[ListParams]):
    """`q` matches a name prefix or any identity value exactly (phone in any common format,
    email, user id, openid, ...). Page with the returned `next` cursor."""
    workspace, actor = allowed(request, "contacts.view")
    limit = max(1, min(params.limit, 200))
    flt = ContactFilter(
        q=params.q,
        tag_id=params.tag_id,
        source=params.source,
        owner_id=params.owner_id,
        sort=params.sort,
    )
    qs = flt.apply(workspace, visible_contacts(workspace, actor)).prefetch_related("consents")
    rows, next_cursor = contact_page(qs, sort=params.sort, cursor=params.cursor, limit=limit)
    return {"items": [contact_out(c) for c in rows], "next": next_cursor}


@contacts_router.post("", response={201: ContactOut}, summary="Create a contact")
def create_contact(request: HttpRequest, payload: ContactIn):
    workspace, actor = allowed(request, "contacts.create")
    data = payload.model_dump()
    if data["owner_id"] is not None and not can(actor, "contacts.assign"):
        raise PermissionDenied("your role may not choose a contact's owner")
    if is_own_only(actor.role) and actor.user is None:
        # The agent this key was issued to is gone: the contact would belong to nobody.
        raise PermissionDenied("this agent key belongs to no staff member; it cannot create")
    contact = actions.contact_create(
        workspace=workspace,
        actor=actor,
        profile={k: data[k] for k in ("name", "gender", "birthday", "province", "city", "source")},
        attributes=data["attributes"],
        owner_id=data["owner_id"],
        tag_ids=data["tag_ids"],
        identities=[IdentityInput(**i) for i in data["identities"]],
    )
    return Status(201, contact_out(_load(request, contact.pk)))


@contacts_router.post("/bulk-tag", response=TagChangeOut, summary="Tag many contacts at once")
def bulk_tag(request: HttpRequest, payload: BulkTagIn):
    workspace, actor = allowed(request, "contacts.bulk")
    ids = visible_contacts(workspace, actor).filter(pk__in=payload.contact_ids)
    return actions.contacts_tag(
        workspace=workspace,
        actor=actor,
        contact_ids=list(ids.values_list("pk", flat=True)),
        add=payload.add,
        remove=payload.remove,
    )


@contacts_router.get("/{contact_id}", response=ContactOut, summary="Get a contact")
def get_contact(request: HttpRequest, contact_id: int, reveal: bool = False):
    """`reveal=true` returns phone and email in clear (needs pii.reveal; audited)."""
    workspace, actor = allowed(request, "contacts.view")
    contact = _load(request, contact_id)
    if reveal:
        allowed(request, "pii.reveal")
        with transaction.atomic():
            for identity in contact.identities.all():
                if identity.is_pii:
                    actions.identity_reveal(workspace=workspace, actor=actor, identity=identity)
    return contact_out(contact, reveal=reveal)


@contacts_router.patch("/{contact_id}", response=ContactOut, summary="Update a contact")
def update_contact(request: HttpRequest, contact_id: int, payload: ContactPatch):
    workspace, actor = allowed(request, "contacts.edit")
    contact = get_contact_for(workspace, actor, contact_id)
    data = payload.model_dump(exclude_unset=True)
    owner_given = "owner_id" in data
    owner_id = data.pop("owner_id", None)
    attributes = data.pop("attributes", None)
    if owner_given:
        allowed(request, "contacts.assign")
    with transaction.atomic():
        actions.contact_update(
            workspace=workspace, actor=actor, contact=contact, profile=data, attributes=attributes
        )
        if owner_given:
            actions.contact_assign(
                workspace=workspace, actor=actor, contact=contact, owner_id=owner_id
            )
    return contact_out(_load(request, contact.pk))


@contacts_router.delete("/{contact_id}", response={204: None}, summary="Delete a contact")
def delete_contact(request: HttpRequest, contact_id: int):
    workspace, actor = allowed(request, "contacts.delete")
    contact = get_contact_for(workspace, actor, contact_id)
    actions.contact_delete(workspace=workspace, actor=actor, contact=contact)
    return Status(204, None)


@contacts_router.get("/{contact_id}/identities", response=list[IdentityOut])
def list_identities(request: HttpRequest, contact_id: int):
    allowed(request, "contacts.view")
    return contact_out(_load(request, contact_id))["identities"]


@contacts_router.post(
    "/{contact_id}/identities",
    response={201: IdentityOut},
    summary="Add an identity (409 if it belongs to another contact)",
)
def add_identity(request: HttpRequest, contact_id: int, payload: IdentityIn):
    workspace, actor = allowed(request, "contacts.edit")
    contact = get_contact_for(workspace, actor, contact_id)
    identity = actions.identity_add(
        workspace=workspace,
        actor=actor,
        contact=contact,
        kind=payload.kind,
        value=payload.value,
        app_id=payload.app_id,
    )
    return Status(
        201,
        {
            "id": identity.pk,
            "kind": identity.kind,
            "app_id": identity.app_id,
            "value": identity.masked,
            "masked": identity.is_pii,
        },
    )


@contacts_router.delete("/{contact_id}/identities/{identity_id}", response={204: None})
def remove_identity(request: HttpRequest, contact_id: int, identity_id: int):
    workspace, actor = allowed(request, "contacts.edit")
    contact = get_contact_for(workspace, actor, contact_id)
    identity = Identity.objects.filter(workspace=workspace, contact=contact, pk=identity_id).first()
    if identity is None:
        raise NotFound("identity not found")
    actions.identity_remove(workspace=workspace, actor=actor, identity=identity)
    return Status(204, None)


@contacts_router.post("/{contact_id}/tags", response=TagChangeOut, summary="Add/remove tags")
def change_tags(request: HttpRequest, contact_id: int, payload: TagChange):
    workspace, actor = allowed(request, "contacts.tag")
    contact = get_contact_for(workspace, actor, contact_id)
    return actions.contacts_tag(
        workspace=workspace,
        actor=actor,
        contact_ids=[contact.pk],
        add=payload.add,
        remove=payload.remove,
    )


@contacts_router.put("/{contact_id}/consent", response=ContactOut, summary="Record consent")
def set_consent(request: HttpRequest, contact_id: int, payload: ConsentIn):
    workspace, actor = allowed(request, "contacts.consent")
    contact = get_contact_for(workspace, actor, contact_id)
    actions.consent_set(
        workspace=workspace,
        actor=actor,
        contact=contact,
        channel=payload.channel,
        status=payload.status,
        source=payload.source,
    )
    return contact_out(_load(request, contact.pk))


@contacts_router.post(
    "/{contact_id}/merge", response=ContactOut, summary="Merge another contact into this one"
)
def merge_contact(request: HttpRequest, contact_id: int, payload: MergeIn):
    workspace, actor = allowed(request, "contacts.merge")
    survivor = get_contact_for(workspace, actor, contact_id)
    other = get_contact_for(workspace, actor, payload.other_id)
    actions.contacts_merge(workspace=workspace, actor=actor, survivor=survivor, other=other)
    return contact_out(_load(request, survivor.pk))


@contacts_router.get("/{contact_id}/timeline", response=TimelineList)
def contact_timeline(request: HttpRequest, contact_id: int):
    workspace, actor = allowed(request, "contacts.view")
    contact = get_contact_for(workspace, actor, contact_id)
    return {
        "items": [
            {
                "id": e.pk,
                "kind": e.kind,
                "data": e.data,
                "actor": e.actor_label,
                "created_at": e.created_at,
            }
            for e in timeline_for(contact)
        ]
    }


# --- tags and tag groups -------------------------------------------------------------------


def _group(request: HttpRequest, group_id: int) -> TagGroup:
    group = TagGroup.objects.filter(workspace=request.workspace, pk=group_id).first()
    if group is None:
        raise NotFound("tag group not found")
    return group


def _tag(request: HttpRequest, tag_id: int) -> Tag:
    tag = Tag.objects.filter(workspace=request.workspace, pk=tag_id).first()
    if tag is None:
        raise NotFound("tag not found")
    return tag


def _group_out(group: TagGroup) -> dict:
    return {
        "id": group.pk,
        "name": group.name,
        "color": group.color,
        "tags": [{"id": t.pk, "name": t.name, "group_id": group.pk} for t in group.tags.all()],
    }


@tags_router.get("/groups", response=list[TagGroupOut], summary="Tag groups with their tags")
def list_groups(request: HttpRequest):
    workspace, _ = allowed(request, "contacts.view")
    return [
        _group_out(g) for g in TagGroup.objects.filter(workspace=workspace).prefetch_related("tags")
    ]


@tags_router.post("/groups", response={201: TagGroupOut})
def create_group(request: HttpRequest, payload: TagGroupIn):
    workspace, actor = allowed(request, "tags.manage")
    group = actions.tag_group_create(
        workspace=workspace, actor=actor, name=payload.name, color=payload.color
    )
    return Status(201, _group_out(group))


@tags_router.patch("/groups/{group_id}", response=TagGroupOut)
def rename_group(request: HttpRequest, group_id: int, payload: TagRename):
    workspace, actor = allowed(request, "tags.manage")
    group = actions.tag_group_update(
        workspace=workspace, actor=actor, group=_group(request, group_id), name=payload.name
    )
    return _group_out(group)


@tags_router.delete("/groups/{group_id}", response={204: None})
def delete_group(request: HttpRequest, group_id: int):
    workspace, actor = allowed(request, "tags.manage")
    actions.tag_group_delete(workspace=workspace, actor=actor, group=_group(request, group_id))
    return Status(204, None)


@tags_router.get("", response=list[TagOut])
def list_tags(request: HttpRequest):
    workspace, _ = allowed(request, "contacts.view")
    return [
        {"id": t.pk, "name": t.name, "group_id": t.group_id}
        for t in Tag.objects.filter(workspace=workspace)
    ]


@tags_router.post("", response={201: TagOut})
def create_tag(request: HttpRequest, payload: TagIn):
    workspace, actor = allowed(request, "tags.manage")
    tag = actions.tag_create(
        workspace=workspace, actor=actor, group=_group(request, payload.group_id), name=payload.name
    )
    return Status(201, {"id": tag.pk, "name": tag.name, "group_id": tag.group_id})


@tags_router.patch("/{tag_id}", response=TagOut)
def rename_tag(request: HttpRequest, tag_id: int, payload: TagRename):
    workspace, actor = allowed(request, "tags.manage")
    tag = actions.tag_update(
        workspace=workspace, actor=actor, tag=_tag(request, tag_id), name=payload.name
    )
    return {"id": tag.pk, "name": tag.name, "group_id": tag.group_id}


@tags_router.delete("/{tag_id}", response={204: None})
def delete_tag(request: HttpRequest, tag_id: int):
    workspace, actor = allowed(request, "tags.manage")
    actions.tag_delete(workspace=workspace, actor=actor, tag=_tag(request, tag_id))
    return Status(204, None)


# --- attribute schema ----------------------------------------------------------------------


def _attr_out(d: AttributeDefinition) -> dict:
    return {"key": d.key, "label": d.label, "type": d.type, "choices": d.choices}


@attributes_router.get("", response=list[AttributeOut], summary="The custom attribute schema")
def list_attributes(request: HttpRequest):
    workspace, _ = allowed(request, "contacts.view")
    return [_attr_out(d) for d in AttributeDefinition.objects.filter(workspace=workspace)]


@attributes_router.post("", response={201: AttributeOut})
def define_attribute(request: HttpRequest, payload: AttributeIn):
    workspace, actor = allowed(request, "attributes.manage")
    d = actions.attribute_define(workspace=workspace, actor=actor, **payload.model_dump())
    return Status(201, _attr_out(d))


@attributes_router.delete("/{key}", response={204: None})
def delete_attribute(request: HttpRequest, key: str):
    workspace, actor = allowed(request, "attributes.manage")
    d = AttributeDefinition.objects.filter(workspace=workspace, key=key).first()
    if d is None:
        raise NotFound("attribute not found")
    actions.attribute_delete(workspace=workspace, actor=actor, definition=d)
    return Status(204, None)

from django.db import IntegrityError, transaction

from siyu.accounts.permissions import is_own_only
from siyu.contacts.models import PII_KINDS, Contact, Identity, IdentityKind
from siyu.contacts.normalize import mask, normalize_identity
from siyu.contacts.timeline import timeline_add
from siyu.core import crypto
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.core.models import Workspace


def identity_hash(kind: str, value: str, app_id: str = "") -> str:
    return crypto.keyed_hash(f"{kind}/{app_id}", value)


def build_identity(
    workspace: Workspace,
    contact: Contact,
    kind: str,
    raw: str,
    app_id: str = "",
    field: str = "value",
) -> Identity:
    """An unsaved Identity with its value normalised, hashed and (for PII) encrypted."""
    prefix = field.removesuffix("value")  # "identities[0]." when part of a larger payload
    if kind not in IdentityKind.values:
        raise ValidationError(
            f"{prefix}kind", f"unknown identity kind {kind!r}", choices=IdentityKind.values
        )
    value = normalize_identity(kind, raw, field)
    if kind == IdentityKind.WECHAT_OPENID and not app_id:
        raise ValidationError(f"{prefix}app_id", "a WeChat openid needs the app id it belongs to")
    if kind != IdentityKind.WECHAT_OPENID:
        app_id = ""
    pii = kind in PII_KINDS
    return Identity(
        workspace=workspace,
        contact=contact,
        kind=kind,
        app_id=app_id,
        value="" if pii else value,
        value_enc=crypto.encrypt(value) if pii else "",
        value_hash=identity_hash(kind, value, app_id),
        masked=mask(kind, value),
    )


def find_identity(workspace: Workspace, kind: str, raw: str, app_id: str = "") -> Identity | None:
    value = normalize_identity(kind, raw)
    return Identity.objects.filter(
        workspace=workspace,
        kind=kind,
        app_id=app_id if kind == IdentityKind.WECHAT_OPENID else "",
        value_hash=identity_hash(kind, value, app_id if kind == IdentityKind.WECHAT_OPENID else ""),
    ).first()


def _taken(identity: Identity, holder_id: int | None, actor: Actor | None) -> Conflict:
    """The 409 for an identity another contact holds. It names that contact only to actors
    who may see it: an agent must not learn whether a phone is in the pool."""
    hidden = actor is not None and is_own_only(actor.role)
    if hidden and holder_id is not None:
        owner_id = Contact.objects.filter(pk=holder_id).values_list("owner_id", flat=True).first()
        hidden = actor.user is None or owner_id != actor.user.pk
    if holder_id is None or hidden:
        return Conflict(
            "this %(kind)s already belongs to another contact",
            params={"kind": identity.kind},
            code="identity_taken",
            details={"field": identity.kind},
        )
    return Conflict(
        "this %(kind)s already belongs to contact %(contact_id)s",
        params={"kind": identity.kind, "contact_id": holder_id},
        code="identity_taken",
        details={"field": identity.kind, "contact_id": holder_id},
    )


def save_identity(identity: Identity, actor: Actor | None = None) -> Identity:
    """Insert, turning a uniqueness clash into a 409 that names the existing contact."""
    existing = Identity.objects.filter(
        workspace=identity.workspace,
        kind=identity.kind,
        app_id=identity.app_id,
        value_hash=identity.value_hash,
    ).first()
    if existing is not None:
        if existing.contact_id == identity.contact_id:
            return existing
        raise _taken(identity, existing.contact_id, actor)
    try:
        with transaction.atomic():
            identity.save()
    except IntegrityError as exc:  # lost a race with a concurrent insert
        winner = Identity.objects.filter(
            workspace=identity.workspace,
            kind=identity.kind,
            app_id=identity.app_id,
            value_hash=identity.value_hash,
        ).first()
        raise _taken(identity, winner.contact_id if winner else None, actor) from exc
    return identity


@transaction.atomic
def identity_add(
    *,
    workspace: Workspace,
    actor: Actor,
    contact: Contact,
    kind: str,
    value: str,
    app_id: str = "",
) -> Identity:
    identity = save_identity(build_identity(workspace, contact, kind, value, app_id), actor)
    timeline_add(contact, "identity_added", actor, kind=kind, value=identity.masked)
    audit(
        workspace=workspace,
        actor=actor,
        action="identity.add",
        obj=contact,
        after={"kind": kind, "value": identity.masked},
    )
    return identity


@transaction.atomic
def identity_remove(*, workspace: Workspace, actor: Actor, identity: Identity) -> None:
    identity = (
        Identity.objects.select_for_update()
        .select_related("contact")
        .filter(pk=identity.pk, workspace=workspace)
        .first()
    )
    if identity is None:  # removed meanwhile (a double submit)
        raise NotFound("identity not found")
    contact = identity.contact
    timeline_add(contact, "identity_removed", actor, kind=identity.kind, value=identity.masked)
    audit(
        workspace=workspace,
        actor=actor,
        action="identity.remove",
        obj=contact,
        before={"kind": identity.kind, "value": identity.masked},
    )
    identity.delete()


def identity_clear_value(identity: Identity) -> str:
    return crypto.decrypt(identity.value_enc) if identity.is_pii else identity.value


@transaction.atomic
def identity_reveal(*, workspace: Workspace, actor: Actor, identity: Identity) -> str:
    """The clear value of a masked identity; every reveal is audited and on the timeline."""
    value = identity_clear_value(identity)
    if identity.is_pii:
        audit(
            workspace=workspace,
            actor=actor,
            action="pii.reveal",
            obj=identity.contact,
            after={"kind": identity.kind, "identity_id": identity.pk},
        )
        timeline_add(identity.contact, "pii_revealed", actor, kind=identity.kind)
    return value

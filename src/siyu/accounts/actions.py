"""Every write about workspaces, staff and API keys. Callers authorise; these assume valid
input except where a rule is the action's own (e.g. the last owner cannot leave)."""

from django.db import transaction
from django.utils import timezone

from siyu.accounts.models import ApiKey, Membership, Staff
from siyu.accounts.permissions import Role
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, PermissionDenied, ValidationError
from siyu.core.models import Workspace
from siyu.core.tokens import hash_token, issue_token, touch_last_used

API_KEY_PREFIX = "sk_"


@transaction.atomic
def workspace_create(
    *, name: str, slug: str, actor: Actor, timezone_name: str = "Asia/Shanghai"
) -> Workspace:
    if Workspace.objects.filter(slug=slug).exists():
        raise Conflict(
            "workspace %(slug)s already exists", details={"field": "slug"}, params={"slug": slug}
        )
    workspace = Workspace.objects.create(name=name, slug=slug, timezone=timezone_name)
    audit(
        workspace=workspace,
        actor=actor,
        action="workspace.create",
        obj=workspace,
        after={"name": name, "slug": slug},
    )
    return workspace


@transaction.atomic
def workspace_update(*, workspace: Workspace, actor: Actor, **changes) -> Workspace:
    before = {k: getattr(workspace, k) for k in changes}
    for key, value in changes.items():
        setattr(workspace, key, value)
    workspace.save(update_fields=list(changes))
    audit(
        workspace=workspace,
        actor=actor,
        action="workspace.update",
        obj=workspace,
        before=before,
        after=changes,
    )
    return workspace


def _revoke_keys_of(workspace: Workspace, staff: Staff) -> None:
    ApiKey.objects.filter(workspace=workspace, acts_for=staff, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def _check_can_grant(actor: Actor, role: str) -> None:
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("only an owner can grant or change the owner role")


@transaction.atomic
def staff_add(
    *,
    workspace: Workspace,
    actor: Actor,
    email: str,
    role: str,
    name: str = "",
    password: str | None = None,
) -> Membership:
    """Add a staff member to a workspace, creating the login if it does not exist yet.
    An existing login keeps its password: adding someone must never let the adder choose
    the password of an account that other workspaces trust."""
    if role not in Role.values:
        raise ValidationError(
            "role", "unknown role %(role)s", params={"role": role}, choices=Role.values
        )
    _check_can_grant(actor, role)
    email = email.strip().lower()
    staff = Staff.objects.filter(email__iexact=email).first()
    if staff is None:
        staff = Staff.objects.create_user(email=email, password=password, name=name)
    membership, created = Membership.objects.get_or_create(
        workspace=workspace, staff=staff, defaults={"role": role}
    )
    if not created:
        raise Conflict(
            "%(email)s is already a member", details={"field": "email"}, params={"email": email}
        )
    audit(
        workspace=workspace,
        actor=actor,
        action="staff.add",
        obj=staff,
        after={"email": email, "role": role},
    )
    return membership


def _owners_left(workspace: Workspace, excluding: Membership) -> int:
    return (
        Membership.objects.filter(workspace=workspace, role=Role.OWNER, staff__is_active=True)
        .exclude(pk=excluding.pk)
        .count()
    )


@transaction.atomic
def staff_set_role(
    *, workspace: Workspace, actor: Actor, membership: Membership, role: str
) -> Membership:
    if role not in Role.values:
        raise ValidationError(
            "role", "unknown role %(role)s", params={"role": role}, choices=Role.values
        )
    membership = Membership.objects.select_for_update().get(pk=membership.pk, workspace=workspace)
    before = membership.role
    if before == role:
        return membership
    _check_can_grant(actor, role)
    _check_can_grant(actor, before)
    if before == Role.OWNER and _owners_left(workspace, membership) == 0:
        raise Conflict("a workspace needs at least one owner", details={"field": "role"})
    membership.role = role
    if before == Role.AGENT:  # an agent key works only while its holder is an agent
        _revoke_keys_of(workspace, membership.staff)
    membership.save(update_fields=["role"])
    audit(
        workspace=workspace,
        actor=actor,
        action="staff.role",
        obj=membership.staff,
        before={"role": before},
        after={"role": role},
    )
    return membership


@transaction.atomic
def staff_remove(*, workspace: Workspace, actor: Actor, membership: Membership) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk, workspace=workspace)
    _check_can_grant(actor, membership.role)
    if membership.role == Role.OWNER and _owners_left(workspace, membership) == 0:
        raise Conflict("a workspace needs at least one owner", details={"field": "role"})
    audit(
        workspace=workspace,
        actor=actor,
        action="staff.remove",
        obj=membership.staff,
        before={"email": membership.staff.email, "role": membership.role},
    )
    # Keys issued to this person in this workspace stop working with their membership.
    _revoke_keys_of(workspace, membership.staff)
    membership.delete()


hash_api_key = hash_token


@transaction.atomic
def apikey_create(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    role: str = Role.ADMIN,
    acts_for_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its clear text, which is never stored or shown again.
    An agent-role key is issued to one agent (`acts_for_id`) and works on their contacts."""
    if not name.strip():
        raise ValidationError("name", "a key needs a name")
    if role not in Role.values or role == Role.OWNER:
        raise ValidationError("role", "API keys can be admin, operator, analyst or agent")
    acts_for = None
    if role == Role.AGENT:
        membership = Membership.objects.filter(
            workspace=workspace, staff_id=acts_for_id, role=Role.AGENT
        ).first()
        if membership is None:
            raise ValidationError("acts_for", "an agent key must be issued to an agent")
        acts_for = membership.staff
    token = issue_token(API_KEY_PREFIX)
    key = ApiKey.objects.create(
        workspace=workspace,
        name=name.strip(),
        prefix=token.prefix,
        key_hash=token.hash,
        role=role,
        created_by=actor.user,
        acts_for=acts_for,
    )
    audit(
        workspace=workspace,
        actor=actor,
        action="apikey.create",
        obj=key,
        after={
            "name": key.name,
            "prefix": key.prefix,
            "role": role,
            "acts_for": acts_for.email if acts_for else None,
        },
    )
    return key, token.raw


@transaction.atomic
def apikey_revoke(*, workspace: Workspace, actor: Actor, key: ApiKey) -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=key.pk, workspace=workspace)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit(
            workspace=workspace,
            actor=actor,
            action="apikey.revoke",
            obj=key,
            after={"name": key.name, "prefix": key.prefix},
        )
    return key


def apikey_authenticate(raw: str) -> ApiKey | None:
    key = (
        ApiKey.objects.select_related("workspace", "acts_for")
        .filter(key_hash=hash_api_key(raw), revoked_at__isnull=True)
        .first()
    )
    if key is not None:
        touch_last_used(key)
    return key

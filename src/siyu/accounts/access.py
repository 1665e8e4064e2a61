"""Who may do what: building the Actor for a request and checking the permission matrix."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from siyu.accounts.models import ApiKey, Membership, Staff
from siyu.accounts.permissions import has_perm, is_own_only
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, PermissionDenied
from siyu.core.models import Workspace


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address for the audit log. Behind reverse proxies listed in
    SIYU_TRUSTED_PROXIES, the nearest X-Forwarded-For hop that is not one of them; a header
    from anyone else is ignored, so a client cannot forge its address."""
    remote = request.META.get("REMOTE_ADDR") or None
    trusted = settings.SIYU_TRUSTED_PROXIES
    if remote not in trusted:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if hop not in trusted:
            return hop if _is_ip(hop) else remote
    return remote


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def membership_for(staff: Staff, workspace: Workspace) -> Membership | None:
    if not staff.is_authenticated or not staff.is_active:
        return None
    return Membership.objects.filter(workspace=workspace, staff=staff).first()


def staff_actor(request: HttpRequest, workspace: Workspace) -> Actor:
    """The actor for a console request; a non-member gets 404, never a hint it exists."""
    membership = membership_for(request.user, workspace)
    if membership is None:
        raise NotFound("workspace not found")
    return Actor(
        user=request.user, label=request.user.email, role=membership.role, ip=client_ip(request)
    )


def key_actor(request: HttpRequest, key: ApiKey) -> Actor:
    # An own-only (agent) key acts for the agent it was issued to: their contacts are the
    # only ones it sees, and contacts it creates are theirs.
    return Actor(
        user=key.acts_for if is_own_only(key.role) else None,
        label=f"api-key:{key.prefix}",
        role=key.role,
        ip=client_ip(request),
        api_key_id=key.pk,
    )


def can(actor: Actor, perm: str) -> bool:
    return has_perm(actor.role, perm)


def require(actor: Actor, perm: str) -> None:
    if not can(actor, perm):
        raise PermissionDenied(
            "your role (%(role)s) may not %(permission)s",
            details={"permission": perm},
            params={"role": actor.role, "permission": perm},
        )

"""The audit log is written inside the same transaction as the change it records."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from siyu.core.models import AuditLog, Workspace


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member (console), an API key, or the system (CLI, tasks)."""

    user: Any = None  # accounts.Staff | None
    label: str = "system"
    role: str = "owner"
    ip: str | None = None
    api_key_id: int | None = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(user=None, label=label, role="owner")


def audit(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: Any = "",
    before: Any = None,
    after: Any = None,
) -> AuditLog:
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    return AuditLog.objects.create(
        workspace=workspace,
        actor=actor.user,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        before=before,
        after=after,
        ip=actor.ip,
    )


def audit_many(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    object_type: str,
    entries: Iterable[tuple[Any, Any, Any]],
) -> int:
    """The rows `audit` would write, one per (object_id, before, after), in one INSERT (for
    actions over many objects, e.g. an import creating thousands of contacts)."""
    rows = [
        AuditLog(
            workspace=workspace,
            actor=actor.user,
            actor_label=actor.label,
            action=action,
            object_type=object_type,
            object_id=str(object_id or ""),
            before=before,
            after=after,
            ip=actor.ip,
        )
        for object_id, before, after in entries
    ]
    AuditLog.objects.bulk_create(rows, batch_size=1000)
    return len(rows)

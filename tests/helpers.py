"""Helpers shared by the tests: whole-database snapshots (to prove a denied or failed request
changed nothing) and raw SQL reads (to prove what is, and is not, stored)."""

from typing import Any

from django.db import connection

from siyu.accounts.models import ApiKey, Membership, Staff
from siyu.contacts.models import (
    AttributeDefinition,
    Consent,
    Contact,
    ContactTag,
    Identity,
    Tag,
    TagGroup,
    TimelineEntry,
)
from siyu.core.models import AuditLog, Job, Workspace

SNAPSHOT_MODELS = [
    Workspace,
    Staff,
    Membership,
    Contact,
    Identity,
    TagGroup,
    Tag,
    ContactTag,
    Consent,
    AttributeDefinition,
    TimelineEntry,
    AuditLog,
    Job,
]


def db_snapshot() -> dict[str, Any]:
    """Every business row, in pk order. API keys are left out on purpose only for
    `last_used_at`, which authentication itself touches."""
    snap: dict[str, Any] = {
        m._meta.label: list(m.objects.order_by("pk").values()) for m in SNAPSHOT_MODELS
    }
    snap["accounts.ApiKey"] = list(
        ApiKey.objects.order_by("pk").values("id", "name", "role", "key_hash", "revoked_at")
    )
    return snap


def snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the tables whose rows differ (empty when nothing changed)."""
    return sorted(k for k in before if before[k] != after[k])


def raw_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
        return cursor.fetchall()


def all_tables_text() -> str:
    """Every row of every table in the database, as one lower-case string."""
    parts = []
    for table in connection.introspection.table_names():
        for row in raw_rows(table):
            parts.append(" | ".join(_text(v) for v in row))
    return "\n".join(parts).lower()


def _text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def audit_actions(**filters) -> list[str]:
    return list(AuditLog.objects.filter(**filters).order_by("pk").values_list("action", flat=True))


def error_of(response) -> dict[str, Any]:
    """The `{code, message, details}` body of an error response, checked for shape."""
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def processed_event(workspace, contact, note: str = "", **fields):
    """An event stored as identity resolution leaves it: the event (fields as for
    `Event.objects.create`) and its `ResolvedEvent` naming `contact` (a Contact, an id or
    None)."""
    from django.utils import timezone

    from siyu.tracking.models import Event, ResolvedEvent

    event = Event.objects.create(workspace=workspace, **fields)
    contact_id = getattr(contact, "pk", contact)
    ResolvedEvent.objects.create(
        event=event,
        workspace=workspace,
        contact_id=contact_id,
        timestamp=event.timestamp,
        note=note,
        processed_at=timezone.now(),
    )
    return event


def pending_event(workspace, error: str = "", **fields):
    """An accepted event still waiting in the resolver's queue."""
    from siyu.tracking.models import Event, QueuedEvent
    from siyu.tracking.routing import for_event

    event = Event.objects.create(workspace=workspace, **fields)
    QueuedEvent.objects.create(workspace=workspace, event=event, error=error, **for_event(event))
    return event

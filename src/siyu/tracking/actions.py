"""Every write of the tracking app: write keys, and storing accepted events. Callers parse
and authorise (views.py); these assume valid input."""

from django.db import transaction
from django.utils import timezone

from siyu.core.audit import Actor, audit
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.core.tokens import hash_token, issue_token, touch_last_used
from siyu.tracking import queue
from siyu.tracking.models import Event, WriteKey
from siyu.tracking.pii import seal_event

WRITE_KEY_PREFIX = "wk_"
hash_write_key = hash_token


@transaction.atomic
def writekey_create(*, workspace: Workspace, actor: Actor, name: str) -> tuple[WriteKey, str]:
    """Create a write key and return it with its clear text, which is never stored or shown
    again."""
    if not name.strip():
        raise ValidationError("name", "a write key needs a name")
    token = issue_token(WRITE_KEY_PREFIX)
    key = WriteKey.objects.create(
        workspace=workspace,
        name=name.strip()[:120],
        prefix=token.prefix,
        key_hash=token.hash,
        created_by=actor.user,
    )
    audit(
        workspace=workspace,
        actor=actor,
        action="writekey.create",
        obj=key,
        after={"name": key.name, "prefix": key.prefix},
    )
    return key, token.raw


@transaction.atomic
def writekey_revoke(*, workspace: Workspace, actor: Actor, key: WriteKey) -> WriteKey:
    """Stop a key from sending; events it sent before stay. Revoking twice is a no-op."""
    key = WriteKey.objects.select_for_update().get(pk=key.pk, workspace=workspace)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit(
            workspace=workspace,
            actor=actor,
            action="writekey.revoke",
            obj=key,
            after={"name": key.name, "prefix": key.prefix},
        )
    return key


def writekey_authenticate(raw: str) -> WriteKey | None:
    """The active key for this clear text (with its workspace), or None."""
    if not raw or not raw.startswith(WRITE_KEY_PREFIX) or len(raw) > 200:
        return None
    key = (
        WriteKey.objects.select_related("workspace")
        .filter(key_hash=hash_write_key(raw), revoked_at__isnull=True)
        .first()
    )
    if key is not None:
        touch_last_used(key)
    return key


def events_ingest(*, workspace: Workspace, events: list[dict]) -> None:
    """Store accepted messages (`schemas.parse_message` output) as pending events, in one
    INSERT that skips every messageId the workspace already has: a retried request, or a
    message repeated inside one batch, is stored once (the first copy wins). The events
    inserted join the resolution queue in the same transaction (queue.store).

    Not audited (events are data, not staff actions). On commit, `tasks.process_pending`
    is enqueued for the workspace to resolve the new events to contacts (resolve.py); a
    failure to enqueue never fails the request (the next ingest enqueues again)."""
    from siyu.tracking.tasks import process_pending

    rows: dict[str, Event] = {}
    for fields in events:
        if fields["message_id"] not in rows:
            rows[fields["message_id"]] = Event(workspace=workspace, **seal_event(fields))
    if rows:
        with transaction.atomic():
            queue.store(list(rows.values()))
            transaction.on_commit(lambda: process_pending.enqueue(workspace.pk), robust=True)

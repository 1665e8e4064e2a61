"""Timeline rows: one per action on a contact, written in the action's transaction."""

import json
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.contacts.models import (
    Channel,
    ConsentStatus,
    Contact,
    ContactTag,
    IdentityKind,
    Source,
    Tag,
    TimelineEntry,
)
from siyu.core.audit import Actor


def timeline_add(contact: Contact, kind: str, actor: Actor, /, **data: Any) -> TimelineEntry:
    # positional-only, so that data may itself carry a "kind" (identity_added, pii_revealed)
    return TimelineEntry.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        kind=kind,
        data=data,
        actor_label=actor.label,
    )


def timeline_add_many(
    workspace_id: int, contact_ids: Iterable[int], kind: str, actor: Actor, /, **data: Any
) -> int:
    now = timezone.now()
    rows = [
        TimelineEntry(
            workspace_id=workspace_id,
            contact_id=cid,
            kind=kind,
            data=data,
            actor_label=actor.label,
            created_at=now,
        )
        for cid in contact_ids
    ]
    TimelineEntry.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def timeline_untag_all(tag: Tag, actor: Actor) -> None:
    """A "tag removed" row for every contact that has `tag`, in one INSERT … SELECT (a tag
    may be on a million contacts; their ids never travel through Python)."""
    data = json.dumps({"tags": [tag.name]}, ensure_ascii=False)
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TimelineEntry._meta.db_table} "  # noqa: S608 - names are ours
            "(workspace_id, contact_id, kind, data, actor_label, created_at) "
            f"SELECT workspace_id, contact_id, %s, %s{cast}, %s, %s "
            f"FROM {ContactTag._meta.db_table} WHERE tag_id = %s",
            [
                "tag_removed",
                data,
                actor.label,
                connection.ops.adapt_datetimefield_value(timezone.now()),
                tag.pk,
            ],
        )


def _label(choices, code: str | None) -> str:
    """The translated label of a stored code; unknown codes are shown as they are."""
    try:
        return str(choices(code).label)
    except ValueError:
        return code or "-"


def describe(entry: TimelineEntry) -> str:
    """A one-line, translated description of a timeline row for the console."""
    d = entry.data
    kind = _label(IdentityKind, d.get("kind"))
    texts = {
        "created": lambda: (
            _("Contact created (source: %(source)s)") % {"source": _label(Source, d.get("source"))}
        ),
        "updated": lambda: (
            _("Profile updated: %(fields)s") % {"fields": ", ".join(d.get("fields", []))}
        ),
        "tag_added": lambda: _("Tag added: %(tags)s") % {"tags": "、".join(d.get("tags", []))},
        "tag_removed": lambda: _("Tag removed: %(tags)s") % {"tags": "、".join(d.get("tags", []))},
        "identity_added": lambda: _("Identity added: %(kind)s %(value)s") % {**d, "kind": kind},
        "identity_removed": lambda: _("Identity removed: %(kind)s %(value)s") % {**d, "kind": kind},
        "consent": lambda: (
            _("Consent %(status)s for %(channel)s (%(source)s)")
            % {
                **d,
                "status": _label(ConsentStatus, d.get("status")),
                "channel": _label(Channel, d.get("channel")),
            }
        ),
        "owner_changed": lambda: _("Owner changed to %(owner)s") % {"owner": d.get("owner") or "-"},
        "merged": lambda: _("Merged contact #%(other_id)s (%(other_name)s) into this one") % d,
        "pii_revealed": lambda: _("%(kind)s revealed") % {"kind": kind},
        "order_placed": lambda: _("Order %(order_id)s placed: %(total)s %(currency)s") % d,
        "order_refunded": lambda: _("Order %(order_id)s refunded: %(amount)s %(currency)s") % d,
        "identity_conflict": lambda: (
            _("Identity conflict with contact #%(other_id)s (not merged): %(identities)s")
            % {
                "other_id": d.get("other_id", "-"),
                "identities": "、".join(
                    f"{_label(IdentityKind, i.get('kind'))} {i.get('value', '')}"
                    for i in d.get("identities", [])
                ),
            }
        ),
    }
    render = texts.get(entry.kind)
    try:
        return render() if render else entry.kind
    except (KeyError, TypeError):
        return entry.kind

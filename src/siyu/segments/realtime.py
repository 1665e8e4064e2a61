"""Keeping segments current: right after a contact's events are processed (real time), when
contacts merge, and on a schedule for everything (refresh.py)."""

import logging
from collections.abc import Iterable

from django.db import transaction

from siyu.core import sqlbulk
from siyu.core.models import Workspace
from siyu.segments.membership import refresh_contacts, refresh_order
from siyu.segments.models import (
    ChangeKind,
    Segment,
    SegmentChange,
    SegmentKind,
    SegmentMember,
)

log = logging.getLogger(__name__)


def has_realtime_segments(workspace_id: int) -> bool:
    return Segment.objects.filter(
        workspace_id=workspace_id, realtime=True, archived_at__isnull=True
    ).exists()


def on_contacts_processed(workspace: Workspace, contact_ids: Iterable[int]) -> dict:
    """After a batch of events: the contacts' stage and tier, then every real-time segment
    for those contacts only (in dependency order). Called after the batch commits; a
    failure is logged and left to the next scheduled refresh, never fails ingestion."""
    ids = sorted({c for c in contact_ids if c})
    if not ids or not has_realtime_segments(workspace.pk):
        return {"contacts": 0, "entered": 0, "exited": 0}
    from siyu.segments.scores import scores_refresh

    entered = exited = 0
    try:
        scores_refresh(workspace, contact_ids=ids)
        for segment in refresh_order(workspace):
            if segment.realtime:
                counts = refresh_contacts(segment, ids)
                entered += counts["entered"]
                exited += counts["exited"]
    except Exception:  # noqa: BLE001 - the scheduled refresh catches up
        log.exception("real-time segment refresh failed for workspace %s", workspace.pk)
    return {"contacts": len(ids), "entered": entered, "exited": exited}


def move_segments_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    """Merge hook: a merged-away contact's history joins its survivor's; its static
    memberships pass to the survivor (unless it has them already); its rule-based
    memberships go with it, and the survivor is re-evaluated after the merge commits."""
    pairs = sorted(mapping.items())
    sqlbulk.update_from_values(
        SegmentChange._meta.db_table,
        [("other", "int"), ("survivor", "int")],
        pairs,
        "contact_id = v.survivor",
        key="contact_id",
    )
    static = SegmentMember.objects.filter(
        workspace=workspace, contact_id__in=list(mapping), segment__kind=SegmentKind.STATIC
    )
    held = set(
        SegmentMember.objects.filter(
            workspace=workspace, contact_id__in=set(mapping.values())
        ).values_list("segment_id", "contact_id")
    )
    for member in static.order_by("pk"):
        target = mapping[member.contact_id]
        if (member.segment_id, target) in held:
            continue
        held.add((member.segment_id, target))
        SegmentMember.objects.filter(pk=member.pk).update(contact_id=target)
        SegmentChange.objects.create(
            workspace=workspace,
            segment_id=member.segment_id,
            contact_id=target,
            kind=ChangeKind.ENTERED,
        )
    survivors = sorted(set(mapping.values()))
    transaction.on_commit(lambda: on_contacts_processed(workspace, survivors))


def after_events_processed(workspace: Workspace, event_ids: list[int]) -> None:
    """The tracking app's processed hook: nothing to do (one EXISTS) unless the workspace
    has a real-time segment."""
    if not event_ids or not has_realtime_segments(workspace.pk):
        return
    from siyu.tracking.models import Event

    contact_ids = (
        Event.objects.filter(pk__in=event_ids, contact_id__isnull=False)
        .values_list("contact_id", flat=True)
        .distinct()
    )
    on_contacts_processed(workspace, list(contact_ids))

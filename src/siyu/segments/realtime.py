"""Keeping segments current: right after a contact's events are processed (real time), when
contacts merge, and on a schedule for everything (refresh.py)."""

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

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
    """Merge hook: a merged-away contact's static memberships pass to its survivor (unless
    it has them already, with an `entered` row); its rule-based memberships end with it,
    and those segments' sizes shrink accordingly (its history goes with it: it left no
    segment, it became the survivor). After the merge commits, the survivors are
    re-evaluated in every rule-based segment."""
    others = list(mapping)
    held = set(
        SegmentMember.objects.filter(
            workspace=workspace, contact_id__in=set(mapping.values())
        ).values_list("segment_id", "contact_id")
    )
    members = SegmentMember.objects.filter(workspace=workspace, contact_id__in=others)
    gone: dict[int, int] = {}
    for member in members.select_related("segment").order_by("pk"):
        target = mapping[member.contact_id]
        if member.segment.kind == SegmentKind.STATIC and (member.segment_id, target) not in held:
            held.add((member.segment_id, target))
            SegmentMember.objects.filter(pk=member.pk).update(contact_id=target)
            SegmentChange.objects.create(
                workspace=workspace,
                segment_id=member.segment_id,
                contact_id=target,
                kind=ChangeKind.ENTERED,
            )
            continue
        SegmentMember.objects.filter(pk=member.pk).delete()
        gone[member.segment_id] = gone.get(member.segment_id, 0) + 1
    for segment_id, count in gone.items():
        Segment.objects.filter(pk=segment_id).update(size=F("size") - count)
    survivors = sorted(set(mapping.values()))
    transaction.on_commit(lambda: reevaluate(workspace, survivors))


def reevaluate(workspace: Workspace, contact_ids: list[int]) -> None:
    """These contacts in every rule-based segment now (after a merge changed who they are);
    a failure is logged and left to the next scheduled refresh."""
    try:
        for segment in refresh_order(workspace):
            refresh_contacts(segment, contact_ids)
    except Exception:  # noqa: BLE001 - the scheduled refresh catches up
        log.exception("re-evaluating merged contacts failed in workspace %s", workspace.pk)


def after_events_processed(workspace: Workspace, event_ids: list[int]) -> None:
    """The tracking app's processed hook: nothing to do (one EXISTS) unless the workspace
    has a real-time segment."""
    if not event_ids or not has_realtime_segments(workspace.pk):
        return
    from siyu.tracking.models import ResolvedEvent

    # the resolutions alone, by primary key: the events themselves are not needed
    contact_ids = (
        ResolvedEvent.objects.filter(pk__in=event_ids, contact_id__isnull=False)
        .values_list("contact_id", flat=True)
        .distinct()
    )
    on_contacts_processed(workspace, list(contact_ids))

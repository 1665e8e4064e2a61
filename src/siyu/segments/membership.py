"""Stored membership: a refresh runs the segment's one SELECT into a temporary table, then
writes the difference with four set statements (entered and exited changes, members
removed and added) and a size row. Refreshes of one segment are serialised by a write to
its row first, so two workers never record a change twice."""

import time
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from siyu.core import sqlbulk
from siyu.core.models import Workspace
from siyu.segments.compiler import read_tables, segment_queryset
from siyu.segments.models import (
    ChangeKind,
    Segment,
    SegmentChange,
    SegmentKind,
    SegmentMember,
    SegmentSize,
)

TEMP = "siyu_segment_rows"
SIZE_EVERY = 86_400  # a size row at least daily, even when nothing changed


def refresh_segment(segment: Segment, *, now=None) -> dict:
    """Recompute a dynamic or built-in segment's members; returns entered/exited/size."""
    now = now or timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        sqlbulk.analyze_stale(cursor, read_tables())
    with transaction.atomic():
        # first a write: takes the row lock on PostgreSQL and the write lock on SQLite
        # before anything is read, so a second refresh waits and then sees this one's rows
        Segment.objects.filter(pk=segment.pk).update(refreshed_at=now)
        qs = segment_queryset(segment.workspace, segment.rule, now).values("id")
        counts = _apply(segment, qs, now)
        elapsed = round((time.perf_counter() - started) * 1000)
        Segment.objects.filter(pk=segment.pk).update(size=counts["size"], refresh_ms=elapsed)
    segment.size, segment.refresh_ms, segment.refreshed_at = counts["size"], elapsed, now
    return counts | {"ms": elapsed}


def refresh_contacts(segment: Segment, contact_ids: Iterable[int], *, now=None) -> dict:
    """Re-evaluate the segment for a few contacts only (real time, after their events): the
    rule restricted to them, compared with their stored memberships; writes only changes."""
    ids = sorted(set(contact_ids))
    now = now or timezone.now()
    if not ids:
        return {"entered": 0, "exited": 0, "size": segment.size}
    qs = segment_queryset(segment.workspace, segment.rule, now, only=ids)
    with transaction.atomic():
        Segment.objects.filter(pk=segment.pk).update(size=F("size"))  # the lock, as above
        inside = set(qs.values_list("pk", flat=True))
        held = set(
            SegmentMember.objects.filter(segment=segment, contact_id__in=ids).values_list(
                "contact_id", flat=True
            )
        )
        entered, exited = sorted(inside - held), sorted(held - inside)
        if not entered and not exited:
            return {"entered": 0, "exited": 0, "size": segment.size}
        _write_changes(segment, entered, exited, now)
        Segment.objects.filter(pk=segment.pk).update(size=F("size") + len(entered) - len(exited))
        size = Segment.objects.values_list("size", flat=True).get(pk=segment.pk)
        _record_size(segment, size, len(entered), len(exited), now)
    segment.size = size
    return {"entered": len(entered), "exited": len(exited), "size": size}


def _write_changes(segment: Segment, entered: list[int], exited: list[int], now) -> None:
    ws = segment.workspace_id
    SegmentMember.objects.bulk_create(
        [
            SegmentMember(workspace_id=ws, segment=segment, contact_id=c, entered_at=now)
            for c in entered
        ],
        batch_size=1000,
    )
    SegmentMember.objects.filter(segment=segment, contact_id__in=exited).delete()
    SegmentChange.objects.bulk_create(
        [
            SegmentChange(workspace_id=ws, segment=segment, contact_id=c, kind=kind, at=now)
            for kind, ids in ((ChangeKind.ENTERED, entered), (ChangeKind.EXITED, exited))
            for c in ids
        ],
        batch_size=1000,
    )


def _apply(segment: Segment, rows_sql, now) -> dict:
    """Diff all stored members against the new rows, with set statements."""
    member = SegmentMember._meta.db_table
    change = SegmentChange._meta.db_table
    sql, params = rows_sql.query.sql_with_params()
    ws, seg = segment.workspace_id, segment.pk
    at = connection.ops.adapt_datetimefield_value(now)  # SQLite: Django's text format
    first = not SegmentMember.objects.filter(segment_id=seg).exists()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TEMP}")
        # CREATE TABLE … AS may run the selection in parallel on PostgreSQL (INSERT …
        # SELECT may not, before PostgreSQL 16)
        cursor.execute(f"CREATE TEMPORARY TABLE {TEMP} AS {sql}", params)
        # indexed and analysed: whatever plan the anti-joins below get (the member table's
        # statistics may not know this segment yet), a probe into it is cheap
        cursor.execute(f"CREATE UNIQUE INDEX {TEMP}_id ON {TEMP} (id)")
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {TEMP}")
        cursor.execute(f"SELECT count(*) FROM {TEMP}")
        size = cursor.fetchone()[0]
        # a segment's first members: no one to compare with, no one exits
        absent = (
            ""
            if first
            else (
                f" WHERE NOT EXISTS (SELECT 1 FROM {member} m "
                f"WHERE m.segment_id = {int(seg)} AND m.contact_id = n.id)"
            )
        )
        cursor.execute(
            f"INSERT INTO {change} (workspace_id, segment_id, contact_id, kind, at) "
            f"SELECT %s, %s, n.id, %s, %s FROM {TEMP} n{absent}",
            [ws, seg, ChangeKind.ENTERED, at],
        )
        entered = cursor.rowcount
        exited = 0
        if not first:
            cursor.execute(
                f"INSERT INTO {change} (workspace_id, segment_id, contact_id, kind, at) "
                f"SELECT %s, %s, m.contact_id, %s, %s FROM {member} m WHERE m.segment_id = %s"
                f" AND NOT EXISTS (SELECT 1 FROM {TEMP} n WHERE n.id = m.contact_id)",
                [ws, seg, ChangeKind.EXITED, at, seg],
            )
            exited = cursor.rowcount
        if exited:
            cursor.execute(
                f"DELETE FROM {member} WHERE segment_id = %s AND contact_id IN "
                f"(SELECT m.contact_id FROM {member} m WHERE m.segment_id = %s "
                f"AND NOT EXISTS (SELECT 1 FROM {TEMP} n WHERE n.id = m.contact_id))",
                [seg, seg],
            )
        if entered:
            cursor.execute(
                f"INSERT INTO {member} (workspace_id, segment_id, contact_id, entered_at) "
                f"SELECT %s, %s, n.id, %s FROM {TEMP} n{absent}",
                [ws, seg, at],
            )
        cursor.execute(f"DROP TABLE {TEMP}")
    _record_size(segment, size, entered, exited, now)
    return {"entered": entered, "exited": exited, "size": size}


def _record_size(segment: Segment, size: int, entered: int, exited: int, now) -> None:
    last = SegmentSize.objects.filter(segment=segment).order_by("-at").first()
    stale = last is None or (now - last.at).total_seconds() >= SIZE_EVERY
    if entered or exited or stale or last.size != size:
        SegmentSize.objects.create(
            workspace_id=segment.workspace_id,
            segment=segment,
            at=now,
            size=size,
            entered=entered,
            exited=exited,
        )


def set_static_members(
    segment: Segment, *, add: Iterable[int] = (), remove: Iterable[int] = (), now=None
) -> dict:
    """Add and remove contacts of a static segment (ids already scoped by the caller)."""
    assert segment.kind == SegmentKind.STATIC
    now = now or timezone.now()
    add, remove = sorted(set(add) - set(remove)), sorted(set(remove))
    with transaction.atomic():
        Segment.objects.filter(pk=segment.pk).update(updated_at=now)
        present = set(
            SegmentMember.objects.filter(segment=segment, contact_id__in=add + remove).values_list(
                "contact_id", flat=True
            )
        )
        new = [c for c in add if c not in present]
        gone = [c for c in remove if c in present]
        _write_changes(segment, new, gone, now)
        size = SegmentMember.objects.filter(segment=segment).count()
        Segment.objects.filter(pk=segment.pk).update(size=size, refreshed_at=now)
        _record_size(segment, size, len(new), len(gone), now)
    segment.size = size
    return {"entered": len(new), "exited": len(gone), "size": size}


def refresh_order(workspace: Workspace) -> list[Segment]:
    """The workspace's rule-based segments, each after the segments its rule uses."""
    from siyu.segments.rules import referenced_segments

    segments = {
        s.pk: s
        for s in Segment.objects.filter(workspace=workspace, archived_at__isnull=True)
        .exclude(kind=SegmentKind.STATIC)
        .select_related("workspace")
    }
    ordered: list[Segment] = []
    done: set[int] = set()

    def visit(pk: int, trail: frozenset) -> None:
        if pk in done or pk not in segments or pk in trail:
            return
        for ref in referenced_segments(segments[pk].rule):
            visit(ref, trail | {pk})
        done.add(pk)
        ordered.append(segments[pk])

    for pk in sorted(segments):
        visit(pk, frozenset())
    return ordered

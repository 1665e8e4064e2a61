"""The resolution queue: accepted events wait in `QueuedEvent` until identity resolution
(resolve.py) decides their contact, which it records as a `ResolvedEvent` while it takes
them off the queue, in the same transaction. The event row itself is never rewritten
(docs/tracking.md, "Storage")."""

import datetime
from collections.abc import Sequence

from django.db import connection

from siyu.core import sqlbulk
from siyu.core.models import Workspace
from siyu.tracking import aggregates
from siyu.tracking.models import Event, QueuedEvent, ResolvedEvent
from siyu.tracking.pending import join_events

# (event id, contact id or None, note, the event's time)
Resolution = tuple[int, int | None, str, datetime.datetime]


def store(events: list[Event]) -> None:
    """Insert accepted events, skipping every messageId the workspace already has, and queue
    the ones inserted. Call inside a transaction. PostgreSQL: one statement (the queue rows
    come from the INSERT's RETURNING). SQLite: its transactions take the one write lock as
    they begin, so the events inserted are those above the largest id before the INSERT."""
    if not events:
        return
    if connection.vendor == "postgresql":
        sqlbulk.insert_rows(
            Event,
            events,
            ignore_conflicts=True,
            then=f"INSERT INTO {QueuedEvent._meta.db_table} (workspace_id, event_id, error) "
            "SELECT workspace_id, id, '' FROM inserted",
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {Event._meta.db_table}")
        (before,) = cursor.fetchone()
        sqlbulk.insert_rows(Event, events, ignore_conflicts=True)
        cursor.execute(
            f"INSERT INTO {QueuedEvent._meta.db_table} (workspace_id, event_id, error) "
            f"SELECT workspace_id, id, '' FROM {Event._meta.db_table} WHERE id > %s",
            [before],
        )


def next_ids(workspace_id: int, after_id: int, limit: int) -> list[int]:
    """The ids of the next `limit` queued events of the workspace after `after_id`, in
    order: the next batch (read from the queue's primary key alone)."""
    return list(
        QueuedEvent.objects.filter(workspace_id=workspace_id, event_id__gt=after_id)
        .order_by("event_id")
        .values_list("event_id", flat=True)[:limit]
    )


def has_queued(workspace_id: int, after_id: int = 0) -> bool:
    return QueuedEvent.objects.filter(workspace_id=workspace_id, event_id__gt=after_id).exists()


def recorded_sql(rows: str) -> str:
    """PostgreSQL: data-modifying CTEs (for a WITH list) that record the resolutions of the
    relation `rows` (columns id, contact_id, note, timestamp) and take those events off the
    queue: `done` returns (event_id, contact_id, timestamp) of each. Parameters: %(ws)s, the
    workspace id, and %(now)s, when they were processed. The known-people pass and `resolve`
    both end with it, then fold what `done` returns (aggregates.fold_sql)."""
    resolved, queued = ResolvedEvent._meta.db_table, QueuedEvent._meta.db_table
    return f"""
        done AS (
            INSERT INTO {resolved} (event_id, workspace_id, contact_id, timestamp, note,
                                    processed_at)
            SELECT id, %(ws)s, contact_id, timestamp, note, %(now)s FROM {rows}
            RETURNING event_id, contact_id, timestamp
        ), dequeued AS (
            -- runs to completion though nothing reads it (a data-modifying WITH)
            DELETE FROM {queued} q USING done
             WHERE q.workspace_id = %(ws)s AND q.event_id = done.event_id
        )"""


def resolve(workspace: Workspace, rows: Sequence[Resolution], now: datetime.datetime) -> None:
    """Record these events' resolutions, take them off the queue and fold those with a
    contact into their contacts' aggregates (aggregates.py): on PostgreSQL one statement for
    the whole batch, on SQLite per 2,000 and then the fold. A resolution recorded twice
    fails on its primary key rather than counting an event twice."""
    if not rows:
        return
    rows = sorted(rows)  # by event id: the primary key's index is then written in order
    columns = [("id", "int"), ("contact_id", "int"), ("note", "text"), ("timestamp", "ts")]
    if connection.vendor == "postgresql":
        source, params = sqlbulk.named_source(columns, rows, "r")
        sql = f"""
            WITH {recorded_sql(f"{source} AS v")}, attached AS MATERIALIZED (
                SELECT e.id, d.contact_id, e.type, e.event, d.timestamp,
                       {aggregates.channel_sql("e")} AS channel
                  FROM done d {join_events("d.event_id", "id, type, event, context")}
                 WHERE d.contact_id IS NOT NULL
            ), {aggregates.fold_sql("attached")}
            SELECT 1
        """
        params |= {"ws": workspace.pk, "now": now, **aggregates.fold_params(workspace)}
        with sqlbulk.pg_cursor() as cursor:
            cursor.execute(sql, params)
        return
    insert = (
        f"INSERT INTO {ResolvedEvent._meta.db_table} (event_id, workspace_id, contact_id, "
        "timestamp, note, processed_at) "
        "SELECT v.id, %s, v.contact_id, v.timestamp, v.note, %s FROM {rows} AS v"
    )
    sqlbulk.execute_with_rows(insert, columns, rows, before=[workspace.pk, now])
    ids = [row[0] for row in rows]
    for chunk in sqlbulk.chunks(ids):
        QueuedEvent.objects.filter(workspace_id=workspace.pk, event_id__in=chunk).delete()
    aggregates.fold_processed(workspace, [row[0] for row in rows if row[1] is not None])


def note_failure(workspace_id: int, event_id: int, text: str) -> None:
    """An event whose resolution failed stays queued, with why."""
    QueuedEvent.objects.filter(workspace_id=workspace_id, event_id=event_id).update(error=text)

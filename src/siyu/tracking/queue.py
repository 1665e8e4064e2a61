"""The resolution queue: accepted events wait in `QueuedEvent` until identity resolution
(resolve.py) decides their contact, which it records as a `ResolvedEvent` while it takes
them off the queue, in the same transaction. The event row itself is never rewritten
(docs/tracking.md, "Storage")."""

import datetime
from collections.abc import Sequence

from django.db import connection

from siyu.core import sqlbulk
from siyu.core.models import Workspace
from siyu.tracking import aggregates, pending, routing
from siyu.tracking.models import Event, QueuedEvent, ResolvedEvent

# (event id, contact id or None, note, the event's time: SQLite's; PostgreSQL's come from the
# queue rows)
Resolution = tuple[int, int | None, str, datetime.datetime]


def store(events: list[Event]) -> None:
    """Insert accepted events, skipping every messageId the workspace already has, and queue
    the ones inserted with their routing fields (routing.py). Call inside a transaction.
    PostgreSQL: one statement (the queue rows come from the INSERT's RETURNING). SQLite: its
    transactions take the one write lock as they begin, so the events inserted are those
    above the largest id before the INSERT."""
    if not events:
        return
    queued = QueuedEvent._meta.db_table
    columns = ", ".join(routing.COLUMNS)
    if connection.vendor == "postgresql":
        sqlbulk.insert_rows(
            Event,
            events,
            ignore_conflicts=True,
            then=f"INSERT INTO {queued} (workspace_id, event_id, error, {columns}) "
            f"SELECT e.workspace_id, e.id, '', {routing.select_sql('e')} FROM inserted e",
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {Event._meta.db_table}")
        (before,) = cursor.fetchone()
        sqlbulk.insert_rows(Event, events, ignore_conflicts=True)
        cursor.execute(
            f"INSERT INTO {queued} (workspace_id, event_id, error, {columns}) "
            f"SELECT e.workspace_id, e.id, '', {routing.select_sql('e')} "
            f"FROM {Event._meta.db_table} e WHERE e.id > %s",
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
    """PostgreSQL: data-modifying CTEs (for a WITH list) that take the events of the relation
    `rows` (columns id, contact_id, note) off the queue and record their resolutions, with
    each event's time from its queue row: `dequeued` returns what the fold reads of each
    (aggregates.fold_sql: id, contact_id, type, event, timestamp, channel). Parameters:
    %(ws)s, the workspace id, and %(now)s, when they were processed. The known-people pass
    and `resolve` both end with it, then fold (the pass folds from its own read of the queue
    rows). An event no longer queued gets no resolution; one that has one already fails the
    statement on the primary key rather than counting an event twice."""
    resolved, queued = ResolvedEvent._meta.db_table, QueuedEvent._meta.db_table
    return f"""
        dequeued AS (
            DELETE FROM {queued} q USING (SELECT id, contact_id, note FROM {rows}) v
             WHERE q.workspace_id = %(ws)s AND q.event_id = v.id
            RETURNING q.event_id AS id, v.contact_id, v.note, q.type, q.event, q.timestamp,
                      q.channel
        ), done AS (
            -- runs to completion even where nothing reads it (a data-modifying WITH); in
            -- id order, so that the primary key's index is written in order
            INSERT INTO {resolved} (event_id, workspace_id, contact_id, timestamp, note,
                                    processed_at)
            SELECT id, %(ws)s, contact_id, timestamp, note, %(now)s FROM dequeued ORDER BY id
        )"""


# the batch's ids and (userId, anonymousId, contact id) of each pair of ids whose repeating
# events take that contact (known.py, resolve._Batch.run)
Paired = tuple[list[int], list[tuple[str, str, int]]]


def resolve(
    workspace: Workspace,
    rows: Sequence[Resolution],
    now: datetime.datetime,
    paired: Paired | None = None,
    new_from: int = aggregates.NO_NEW_CONTACTS,
) -> None:
    """Record these events' resolutions, take them off the queue and fold those with a
    contact into their contacts' aggregates (aggregates.py): on PostgreSQL one statement for
    the whole batch, on SQLite per 2,000 and then the fold. With `paired` (PostgreSQL), the
    plain events of the batch still queued that carry one of those pairs of ids and are not
    among `rows` are recorded too, with that pair's contact: the server finds them (they may
    be most of a batch, which Python then never handles one by one). A resolution recorded
    twice fails on its primary key rather than counting an event twice. `new_from`: the
    smallest id of the contacts the batch creates (aggregates.fold_params)."""
    ids, pairs = paired or ([], [])
    if not rows and not pairs:
        return
    if connection.vendor == "postgresql":
        # each event's time comes from its queue row, and most have no note: the notes are
        # sent for the events that have one
        noted = [(event_id, note) for event_id, _, note, _ in rows if note]
        sql = f"""
            WITH given AS MATERIALIZED (
                SELECT g.id, g.contact_id, COALESCE(n.note, '') AS note
                  FROM unnest(%(given)b::bigint[], %(contacts)b::bigint[]) AS g(id, contact_id)
                  LEFT JOIN unnest(%(noted)b::bigint[], %(notes)s::text[]) AS n(id, note)
                       ON n.id = g.id
            ), paired AS (
                SELECT ids.id, p.contact_id, '' AS note
                  FROM unnest(%(ids)b::bigint[]) AS ids(id) {pending.join_queue("ids.id")}
                       AND q.plain
                  JOIN unnest(%(users)s::text[], %(devices)s::text[], %(holders)b::bigint[])
                       AS p(user_id, anonymous_id, contact_id)
                    ON p.user_id = q.user_id AND p.anonymous_id = q.anonymous_id
                 WHERE NOT EXISTS (SELECT 1 FROM given WHERE given.id = ids.id)
            ), {recorded_sql("(SELECT * FROM given UNION ALL SELECT * FROM paired) AS r")},
            attached AS MATERIALIZED (
                SELECT * FROM dequeued WHERE contact_id IS NOT NULL
            ), {aggregates.fold_sql("attached")}
            SELECT 1
        """
        params = {
            "ws": workspace.pk,
            "now": now,
            "given": sqlbulk.BigIntArray([row[0] for row in rows]),
            "contacts": sqlbulk.BigIntArray([row[1] for row in rows]),
            "noted": sqlbulk.BigIntArray([event_id for event_id, _ in noted]),
            "notes": [note for _, note in noted],
            "ids": sqlbulk.BigIntArray(ids if pairs else []),
            "users": [user for user, _, _ in pairs],
            "devices": [device for _, device, _ in pairs],
            "holders": sqlbulk.BigIntArray([holder for _, _, holder in pairs]),
            **(pending.queue_range(ids) if pairs else {"first": 0, "last": 0}),
            **aggregates.fold_params(workspace, new_from),
        }
        with sqlbulk.pg_cursor() as cursor:
            cursor.execute(sql, params)
        return
    if pairs:
        raise ValueError("resolve(paired=…) is PostgreSQL only")
    rows = sorted(rows)  # by event id: the primary key's index is then written in order
    columns = [("id", "int"), ("contact_id", "int"), ("note", "text"), ("timestamp", "ts")]
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


def queued_among(workspace_id: int, ids: list[int]) -> list[int]:
    """Those of these ids (in order) whose events are still queued."""
    if not ids:
        return []
    wanted = set(ids)
    queued = QueuedEvent.objects.filter(
        workspace_id=workspace_id, event_id__gte=ids[0], event_id__lte=ids[-1]
    ).values_list("event_id", flat=True)
    return sorted(i for i in queued if i in wanted)


def note_failure(workspace_id: int, event_id: int, text: str) -> None:
    """An event whose resolution failed stays queued, with why."""
    QueuedEvent.objects.filter(workspace_id=workspace_id, event_id=event_id).update(error=text)

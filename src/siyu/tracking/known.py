"""The set-based pass for events from people already known (PostgreSQL).

Most of a live stream is track, page and screen calls from users and devices the pool
already holds. Such an event needs no decision: its contact is the one contact that holds
its userId and anonymousId, and nothing about contacts changes. One statement joins a
batch's queue rows (which carry what it routes by, routing.py) to the identities that hold
their ids, records their resolutions, takes them off the queue (queue.py) and folds them
into their contacts' seen times and aggregates (aggregates.fold_sql).

An event qualifies when it is a track (not an order event), page or screen; has no
`context.traits` to apply; carries a userId and/or an anonymousId without surrounding
spaces; every id it carries is held; and all are held by one contact. Everything else
(new people, identify, traits, aliases, orders, two holders to merge or keep apart) is
left pending for the planner in resolve.py, which runs right after this pass in the same
transaction. Running this pass first gives the same end state as id order: it only
attaches events to holders that exist, and a merge planned afterwards moves the holder's
events to the survivor (the merge hook), as it would have.

The same statement sorts the plain events it leaves: the first with their pair of ids,
which it reads as pending.read_pending would (they need no read of their own), and the later
ones, which repeat an earlier event's ids and are not read at all: it returns only their
pairs, with how many and when (resolve._Batch.run gives each pair its contact, and
queue.resolve finds those events again among the queue rows as it records them).

On SQLite the planner does all of it (this pass is PostgreSQL only)."""

import datetime
from collections.abc import Callable
from typing import NamedTuple

from django.db import connection

from siyu.contacts.models import Identity, IdentityKind
from siyu.core import sqlbulk
from siyu.tracking import aggregates, queue
from siyu.tracking.pending import (
    PendingEvent,
    context_sql,
    from_row,
    join_events,
    join_queue,
    queue_range,
)

PLANNED_ON = (Identity,)
# what the pass reads of a planned event (pending.py)
EVENT_COLUMNS = (
    "id, message_id, user_id, anonymous_id, previous_id, context, timestamp, type, event"
)
STATISTICS_SAMPLE = 10  # 3,000 rows


def refresh_statistics() -> None:
    """PostgreSQL: ANALYZE the identity table when its statistics are far behind (call it
    before the pass): a burst of ingest grows it faster than autovacuum looks at it (or
    autovacuum is off). With stale statistics the planner takes it for tiny and filters a
    workspace's identities once per event: quadratic. Only this table: the event
    statements name events by primary key, and analysing the contact and aggregate tables
    inside the batch too made its commit take seconds (measured; the cause is not pinned
    down). A small sample (STATISTICS_SAMPLE) suffices: the plans need the table's size,
    and the default sample read a 37,000-row table whole (0.13 s against 0.013 s)."""
    if connection.vendor == "postgresql":
        with sqlbulk.pg_cursor() as cursor:
            tables = [m._meta.db_table for m in PLANNED_ON]
            sqlbulk.analyze_stale(cursor, tables, sample=STATISTICS_SAMPLE)


def _holders(column: str, kind: str) -> str:
    """The contact holding each distinct value of a batch column (userId or anonymousId)
    among its plain events, or NULL: one index lookup per value, not per event (a batch
    names each person about ten times), whatever the statistics say (the identities this
    transaction has just written are not in them yet)."""
    return f"""SELECT v.value, (
                SELECT i.contact_id FROM {Identity._meta.db_table} i
                 WHERE i.workspace_id = %(ws)s AND i.kind = %({kind})s AND i.app_id = ''
                   AND i.value = v.value
                 LIMIT 1) AS contact_id
              FROM (SELECT DISTINCT {column} AS value FROM batch
                     WHERE plain AND {column} <> '') v"""


Pair = tuple[str, str]  # the userId and anonymousId of an event, as queued


class RepeatedPair(NamedTuple):
    """The plain events left that carry one pair of ids some earlier event left carries."""

    count: int
    # the earliest and latest time among them and the first event of the pair, if plain
    # (planned, it takes the same contact)
    first: datetime.datetime
    last: datetime.datetime


class Known(NamedTuple):
    resolved: int  # events the pass resolved
    repeated: dict[Pair, RepeatedPair]  # not read: they take the pair's holder once planned
    planned: list[PendingEvent]  # the other plain events left, read in full
    unread: list[int]  # the events the planner must read itself


def resolve_known(workspace, ids: list[int]) -> Callable[[], Known]:
    """Resolve the qualifying events among these pending ones, and fold them into their
    contacts' aggregates (aggregates.fold_sql). Returns a function that returns a `Known`:
    how many it resolved; by pair of ids, the plain events left that carry exactly the ids
    of an earlier event left (of any type), which the planner need not read: once it has
    planned the batch they take the contact holding those ids (`_Batch.run`, and
    queue.resolve records them in SQL); read in full, the first plain event left of each
    other pair; and the events the planner must read itself. Inside `sqlbulk.pipelined()`
    the statement is only sent, and that function waits for it. On SQLite nothing is
    resolved and the planner reads every event."""
    if connection.vendor != "postgresql":
        return lambda: Known(0, {}, [], list(ids))
    taken = (
        "(SELECT id, holder AS contact_id, '' AS note FROM looked WHERE holder IS NOT NULL) AS t"
    )
    now = datetime.datetime.now(datetime.UTC)
    sql = f"""
        WITH batch AS MATERIALIZED (
            SELECT ids.id, q.user_id, q.anonymous_id, q.plain, q.timestamp, q.type, q.event,
                   q.channel
            -- a LEFT JOIN, so that the planner counts every id given (all are queued)
            FROM unnest(%(ids)b::bigint[]) AS ids(id)
            LEFT {join_queue("ids.id")}
        ), users AS MATERIALIZED (
            {_holders("user_id", "user_kind")}
        ), devices AS MATERIALIZED (
            {_holders("anonymous_id", "anon_kind")}
        ), looked AS MATERIALIZED (
            SELECT b.id, b.user_id, b.anonymous_id, b.plain, b.timestamp, b.type, b.event,
                   b.channel,
                   CASE WHEN b.plain
                         AND (b.user_id = '' OR u.contact_id IS NOT NULL)
                         AND (b.anonymous_id = '' OR a.contact_id IS NOT NULL)
                         AND (u.contact_id IS NULL OR a.contact_id IS NULL
                              OR u.contact_id = a.contact_id)
                        THEN COALESCE(u.contact_id, a.contact_id) END AS holder
            FROM batch b
            LEFT JOIN users u ON b.plain AND u.value = b.user_id
            LEFT JOIN devices a ON b.plain AND a.value = b.anonymous_id
        ), {queue.recorded_sql(taken)}, attached AS (
            SELECT id, holder AS contact_id, type, event, timestamp, channel FROM looked
             WHERE holder IS NOT NULL
        ), {aggregates.fold_sql("attached")}, pairs AS MATERIALIZED (
            -- each pair of ids among the events left: its first event, and its plain ones
            SELECT user_id, anonymous_id, min(id) AS first,
                   min(id) FILTER (WHERE plain) = min(id) AS first_is_plain,
                   count(*) FILTER (WHERE plain) AS plain,
                   min(timestamp) FILTER (WHERE plain) AS earliest,
                   max(timestamp) FILTER (WHERE plain) AS latest
              FROM looked WHERE holder IS NULL
             GROUP BY user_id, anonymous_id
        )
        -- the plain events left after the first of their pair, which repeat its ids
        SELECT 'repeated', NULL::bigint, user_id, anonymous_id,
               plain - (first_is_plain IS TRUE)::int, earliest, latest,
               {", ".join(["NULL"] * 12)}
          FROM pairs WHERE plain > (first_is_plain IS TRUE)::int
        UNION ALL
        -- the first of their pair, when plain: read again, as pending.read_pending reads
        -- them (a plain event has no order properties or traits): carrying their JSON
        -- through the pass cost more
        SELECT 'planned', p.first, NULL, NULL, NULL, NULL, NULL,
               e.id, e.message_id, e.type, e.user_id, e.anonymous_id, e.previous_id, e.event,
               NULL, NULL, {context_sql("e")}, e.timestamp
          FROM pairs p LEFT {join_events("p.first", EVENT_COLUMNS)}
         WHERE p.first_is_plain
        UNION ALL
        SELECT 'resolved', NULL, NULL, NULL, count(*), NULL, NULL, {", ".join(["NULL"] * 12)}
          FROM looked WHERE holder IS NOT NULL
    """
    params = {
        "ws": workspace.pk,
        "ids": sqlbulk.BigIntArray(ids),
        **queue_range(ids),
        "user_kind": IdentityKind.USER_ID,
        "anon_kind": IdentityKind.ANONYMOUS_ID,
        "now": now,
        **aggregates.fold_params(workspace),
    }
    fetch = sqlbulk.send(sql, params)

    def result() -> Known:
        resolved, repeated, planned, unread = 0, {}, [], []
        for kind, event_id, user, anonymous, count, first, last, *event in fetch():
            if kind == "repeated":
                repeated[user, anonymous] = RepeatedPair(count, first, last)
            elif kind == "resolved":
                resolved = count
            elif event[0] is None:  # its row could not be read: read_pending tries again
                unread.append(event_id)
            else:
                planned.append(from_row(event))
        return Known(resolved, repeated, planned, unread)

    return result

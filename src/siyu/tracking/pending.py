"""Reading a batch of pending events for the resolver, without building model instances
(their construction and JSON conversion was a fifth of the processing time): plain rows into
light `PendingEvent` objects. Only what resolution uses is read; `properties` only for the
order events that need them, `traits` only for identify."""

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Case, JSONField, Q, When

from siyu.core import sqlbulk
from siyu.tracking.models import Event, MessageType, QueuedEvent
from siyu.tracking.orders import ORDER_EVENTS

ORDERS = {"orders": sorted(ORDER_EVENTS)}  # the parameter `_select_sql` reads


COLUMNS = (
    "id",
    "message_id",
    "type",
    "user_id",
    "anonymous_id",
    "previous_id",
    "event",
    "properties",
    "traits",
    "context",
    "timestamp",
)


@dataclass(slots=True)
class PendingEvent:
    id: int
    message_id: str
    type: str
    user_id: str
    anonymous_id: str
    previous_id: str
    event: str
    properties: Any
    traits: Any
    context: Any
    timestamp: datetime.datetime

    @property
    def pk(self) -> int:
        return self.id


def read_pending(workspace_id: int, ids: list[int]) -> list[PendingEvent]:
    """These events of the workspace (queued ones: the resolver's batch), in id order. Later
    statements name events by id (primary-key lookups), so their plans never depend on how
    fresh the table statistics are."""
    if not ids:
        return []
    if connection.vendor == "postgresql":
        return _read_postgresql(workspace_id, ids)()
    order_event = Q(type=MessageType.TRACK, event__in=sorted(ORDER_EVENTS))
    rows = (
        Event.objects.among(workspace_id, ids)
        .order_by("id")
        .annotate(
            props=Case(When(order_event, then="properties"), output_field=JSONField()),
            trait_values=Case(
                When(type=MessageType.IDENTIFY, then="traits"), output_field=JSONField()
            ),
        )
        .values_list(*COLUMNS[:7], "props", "trait_values", "context", "timestamp")
    )
    return [PendingEvent(*row) for row in rows]


def read_first(
    workspace_id: int, ids: list[int], names: Sequence[str]
) -> Callable[[], tuple[list[PendingEvent], list[int]]]:
    """What a batch reads before the pass for known people (known.py) takes events off the
    queue, with one read of its queue rows: in full, the events that are not plain, which
    the pass never takes and the planner plans, in id order; and the ids of the track events
    named one of `names` (the product events, whose products the batch counts:
    products.read_events reads them later). Returns a function that returns both; inside
    `sqlbulk.pipelined()` the read is only sent, and that function waits for it. On SQLite
    the planner reads every event after the pass: none here, and every id may be a product
    event's."""
    if connection.vendor != "postgresql" or not ids:
        return lambda: ([], list(ids))
    named = "q.type = %(track)s AND q.event = ANY(%(names)s)"
    sql = (
        f"SELECT ids.id, {named}, {_select_sql()} FROM unnest(%(ids)b::bigint[]) AS ids(id) "
        f"{join_queue('ids.id')} AND (NOT q.plain OR {named}) "
        f"LEFT {join_events('ids.id', ', '.join(COLUMNS), only='NOT q.plain')} ORDER BY ids.id"
    )
    params = {
        "ids": sqlbulk.BigIntArray(ids),
        "ws": workspace_id,
        "track": MessageType.TRACK,
        "names": sorted(names),
        **ORDERS,
        **queue_range(ids),
    }
    fetch = sqlbulk.send(sql, params)

    def result() -> tuple[list[PendingEvent], list[int]]:
        rows = fetch()
        unplain = [from_row(row[2:]) for row in rows if row[2] is not None]
        return unplain, [row[0] for row in rows if row[1]]

    return result


def read_repeated(
    workspace_id: int, ids: list[int], pairs: list[tuple[str, str]], planned: list[int]
) -> list[PendingEvent]:
    """PostgreSQL: the plain events of the batch `ids` that carry one of these pairs of ids
    (userId, anonymousId, as queued) and are not among `planned`, in id order: the events
    that repeat a pair (known.py) and must be planned after all (resolve._Batch.run)."""
    if not pairs:
        return []
    sql = (
        f"SELECT {_select_sql()} FROM unnest(%(ids)b::bigint[]) AS ids(id) "
        f"{join_queue('ids.id')} AND q.plain "
        "JOIN unnest(%(users)s::text[], %(devices)s::text[]) AS p(user_id, anonymous_id) "
        "ON p.user_id = q.user_id AND p.anonymous_id = q.anonymous_id "
        f"{join_events('ids.id', ', '.join(COLUMNS))} "
        "WHERE NOT EXISTS (SELECT 1 FROM unnest(%(planned)b::bigint[]) AS t(id) "
        "WHERE t.id = ids.id) ORDER BY e.id"
    )
    params = {
        "ids": sqlbulk.BigIntArray(ids),
        "ws": workspace_id,
        "users": [user for user, _ in pairs],
        "devices": [device for _, device in pairs],
        "planned": sqlbulk.BigIntArray(planned),
        **ORDERS,
        **queue_range(ids),
    }
    fetch = sqlbulk.send(sql, params)
    return [from_row(row) for row in fetch()]


def join_queue(id_expr: str) -> str:
    """PostgreSQL: a JOIN to the queue row `q` (routing.py) of the event whose id is `id_expr`,
    one of the batch `queue_range` describes (its parameters). The batch is a run of the
    queue's primary key, so the server reads that run once and hashes it, or looks each row
    up, whichever it estimates cheaper: 100,000 lookups took 0.12 s, the hashed run 0.06 s."""
    return (
        f"JOIN {QueuedEvent._meta.db_table} q ON q.workspace_id = %(ws)s "
        f"AND q.event_id = {id_expr} AND q.event_id BETWEEN %(first)s AND %(last)s"
    )


def queue_range(ids: list[int]) -> dict[str, int]:
    """The parameters of `join_queue` for a batch (ids in order)."""
    return {"first": ids[0], "last": ids[-1]}


def join_events(id_expr: str, columns: str, only: str = "") -> str:
    """PostgreSQL: a JOIN to the event `e` whose id is `id_expr`, looked up by primary key
    (OFFSET 0 keeps the workspace test, %(ws)s, out of the lookup), with `columns` of it.
    Whatever the statistics say of the workspace's events (a new workspace's are stale after
    its first burst), the plan reads the batch's events, not all of the workspace's: hashing
    those was most of the reads' time (0.71 s against 0.49 s per 100,000 events). `only`: a
    condition on the outer row for looking the event up at all (with a LEFT JOIN)."""
    where = f"id = {id_expr}" + (f" AND {only}" if only else "")
    return (
        f"JOIN LATERAL (SELECT workspace_id, {columns} FROM {Event._meta.db_table} "
        f"WHERE {where} OFFSET 0) e ON e.workspace_id = %(ws)s"
    )


def context_sql(e: str) -> str:
    """SQL for the two columns the planner reads of the context of event row `e`: only the
    parts resolution reads (resolve.py: parse_event, is_plain, _source), as JSON only when
    there are traits or an app (decoding a JSON value per event cost more than reading it),
    and the campaign source as text (`from_row` puts it back). The rest (ip, user agent,
    library, page, …) stays in the row."""
    return (
        f"CASE WHEN jsonb_typeof({e}.context) <> 'object' THEN {e}.context "
        f"WHEN {e}.context ? 'traits' OR {e}.context ? 'app' THEN jsonb_build_object("
        f"'traits', {e}.context -> 'traits', 'app', {e}.context -> 'app') END, "
        f"CASE WHEN jsonb_typeof({e}.context -> 'campaign' -> 'source') = 'string' "
        f"THEN {e}.context -> 'campaign' ->> 'source' END"
    )


def from_row(row: tuple) -> PendingEvent:
    """A PendingEvent from a row of COLUMNS with the context as `context_sql` reads it."""
    *head, context, source, timestamp = row
    if source is not None:
        context = {**(context or {}), "campaign": {"source": source}}
    return PendingEvent(*head, {} if context is None else context, timestamp)


def _select_sql() -> str:
    """The columns of a PendingEvent of the event row `e` (COLUMNS, with the context as
    `context_sql` reads it): the properties of order events only, the traits of identify
    calls only. Parameters: %(orders)s (ORDERS)."""
    return (
        "e.id, e.message_id, e.type, e.user_id, e.anonymous_id, e.previous_id, e.event, "
        "CASE WHEN e.type = 'track' AND e.event = ANY(%(orders)s) THEN e.properties END, "
        f"CASE WHEN e.type = 'identify' THEN e.traits END, {context_sql('e')}, e.timestamp"
    )


def _read_postgresql(workspace_id: int, ids: list[int]) -> Callable[[], list[PendingEvent]]:
    sql = (
        f"SELECT {_select_sql()} FROM unnest(%(ids)b::bigint[]) AS ids(id) "
        f"{join_events('ids.id', ', '.join(COLUMNS))} ORDER BY e.id"
    )
    params = {"ids": sqlbulk.BigIntArray(ids), "ws": workspace_id, **ORDERS}
    fetch = sqlbulk.send(sql, params)
    return lambda: [from_row(row) for row in fetch()]

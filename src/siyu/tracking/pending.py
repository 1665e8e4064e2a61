"""Reading a batch of pending events for the resolver, without building model instances
(their construction and JSON conversion was a fifth of the processing time): plain rows into
light `PendingEvent` objects. Only what resolution uses is read; `properties` only for the
order events that need them, `traits` only for identify."""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Case, JSONField, Q, When

from siyu.core import sqlbulk
from siyu.tracking.models import Event, MessageType
from siyu.tracking.orders import ORDER_EVENTS

# The events the pass for known people may take (known.py lists the conditions):
# resolve.is_plain says the same in Python.
PLAIN = """e.type = ANY(%(types)s)
              AND NOT (e.type = %(track)s AND e.event = ANY(%(orders)s))
              AND (jsonb_typeof(e.context -> 'traits') IS DISTINCT FROM 'object'
                   OR e.context -> 'traits' = '{}'::jsonb)
              AND (e.user_id <> '' OR e.anonymous_id <> '')
              AND e.user_id = btrim(e.user_id) AND e.anonymous_id = btrim(e.anonymous_id)"""
PLAIN_PARAMS = {
    "types": [MessageType.TRACK, MessageType.PAGE, MessageType.SCREEN],
    "track": MessageType.TRACK,
    "orders": sorted(ORDER_EVENTS),
}


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


def read_unplain(workspace_id: int, ids: list[int]) -> Callable[[], list[PendingEvent]]:
    """PostgreSQL: the events among these that the pass for known people never takes (not
    plain, known.PLAIN): the planner reads them whatever that pass does, so they are read
    alongside it. Returns a function that returns them, in id order; inside
    `sqlbulk.pipelined()` the read is only sent, and that function waits for it. SQLite:
    none (the planner reads every event after the pass)."""
    if connection.vendor != "postgresql" or not ids:
        return lambda: []
    return _read_postgresql(workspace_id, ids, f"NOT ({PLAIN})")


def join_events(id_expr: str, columns: str) -> str:
    """PostgreSQL: a JOIN to the event `e` whose id is `id_expr`, looked up by primary key
    (OFFSET 0 keeps the workspace test, %(ws)s, out of the lookup), with `columns` of it.
    Whatever the statistics say of the workspace's events (a new workspace's are stale after
    its first burst), the plan reads the batch's events, not all of the workspace's: hashing
    those was most of the reads' time (0.71 s against 0.49 s per 100,000 events)."""
    return (
        f"JOIN LATERAL (SELECT workspace_id, {columns} FROM {Event._meta.db_table} "
        f"WHERE id = {id_expr} OFFSET 0) e ON e.workspace_id = %(ws)s"
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


def _read_postgresql(
    workspace_id: int, ids: list[int], condition: str = "true"
) -> Callable[[], list[PendingEvent]]:
    columns = ", ".join(COLUMNS)
    sql = (
        "SELECT e.id, message_id, type, user_id, anonymous_id, previous_id, event, "
        "CASE WHEN type = 'track' AND event = ANY(%(orders)s) THEN properties END, "
        f"CASE WHEN type = 'identify' THEN traits END, {context_sql('e')}, timestamp "
        f"FROM unnest(%(ids)b::bigint[]) AS ids(id) {join_events('ids.id', columns)} "
        f"WHERE {condition} ORDER BY e.id"
    )
    params = {"ids": sqlbulk.BigIntArray(ids), "ws": workspace_id, **PLAIN_PARAMS}
    fetch = sqlbulk.send(sql, params)
    return lambda: [from_row(row) for row in fetch()]

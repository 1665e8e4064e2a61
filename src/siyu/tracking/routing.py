"""What the resolver routes an event by, decided once, as the event is accepted: its queue
row (QueuedEvent) carries the event's ids, type, name and time, whether it is plain (the
pass for known people may take it, known.py) and its channel (the fold keeps the last one,
aggregates.py). So a resolver batch reads its queue rows rather than its events: it reads
an event in full only when it plans it (pending.py) or counts its products (products.py),
and folds what it resolves from the queue rows it deletes (queue.recorded_sql).

The rules are written in SQL, for PostgreSQL and for SQLite (`select_sql`: the collection
API's statement computes them), and in Python (`is_plain`, which the planner uses too, and
aggregates.last_channel: `for_event`, for rows queued one at a time); a test holds them to
the same answers."""

from typing import Any

from django.db import connection

from siyu.tracking.aggregates import CHANNEL_BLANKS, last_channel
from siyu.tracking.models import MessageType
from siyu.tracking.orders import ORDER_EVENTS

PLAIN_TYPES = frozenset({MessageType.TRACK, MessageType.PAGE, MessageType.SCREEN})
# the routing columns of a queue row, in the order `select_sql` gives them
COLUMNS = ("user_id", "anonymous_id", "type", "event", "timestamp", "plain", "channel")


def is_plain(event) -> bool:
    """Whether the pass for known people may take the event: a track (not an order event),
    page or screen with no `context.traits` to apply and a userId and/or anonymousId without
    surrounding spaces (`select_sql` says the same in SQL)."""
    if event.type not in PLAIN_TYPES:
        return False
    if event.type == MessageType.TRACK and event.event in ORDER_EVENTS:
        return False
    traits = event.context.get("traits") if isinstance(event.context, dict) else None
    if isinstance(traits, dict) and traits:
        return False
    user, anonymous = event.user_id, event.anonymous_id
    return bool(user or anonymous) and user == user.strip(" ") and anonymous == anonymous.strip(" ")


def for_event(event) -> dict[str, Any]:
    """The routing fields of an event's queue row ({attname: value}), computed in Python."""
    return {
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "type": event.type,
        "event_name": event.event,
        "timestamp": event.timestamp,
        "plain": is_plain(event),
        "channel": last_channel(event.context),
    }


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _texts(values) -> str:
    """A list of string constants, for IN (…) or ARRAY[…]."""
    return ", ".join(_text(str(v)) for v in sorted(values))


def _plain_postgresql(e: str) -> str:
    """PostgreSQL: `is_plain` of the event row `e`, with its constants written in (it runs
    inside statements whose parameters are positional)."""
    track, orders = _text(MessageType.TRACK), f"ARRAY[{_texts(ORDER_EVENTS)}]::text[]"
    return f"""({e}.type = ANY(ARRAY[{_texts(PLAIN_TYPES)}]::text[])
              AND NOT ({e}.type = {track} AND {e}.event = ANY({orders}))
              AND (jsonb_typeof({e}.context -> 'traits') IS DISTINCT FROM 'object'
                   OR {e}.context -> 'traits' = '{{}}'::jsonb)
              AND ({e}.user_id <> '' OR {e}.anonymous_id <> '')
              AND {e}.user_id = btrim({e}.user_id)
              AND {e}.anonymous_id = btrim({e}.anonymous_id))"""


# CHANNEL_BLANKS as an escaped string constant (\v has no escape of its own there)
_BLANKS = "E'" + "".join(f"\\x{ord(c):02x}" for c in CHANNEL_BLANKS) + "'"


def _candidate_postgresql(path: str) -> str:
    """One candidate of `last_channel`: the JSON string at `path`, trimmed, or NULL."""
    return (
        f"NULLIF(btrim(CASE WHEN jsonb_typeof({path}) = 'string' THEN {path} #>> '{{}}' END, "
        f"{_BLANKS}), '')"
    )


def _channel_postgresql(e: str) -> str:
    """PostgreSQL: aggregates.last_channel of the event row `e`."""
    paths = ("-> 'channel'", "-> 'campaign' -> 'source'", "-> 'library' -> 'name'")
    candidates = ", ".join(_candidate_postgresql(f"{e}.context {path}") for path in paths)
    return f"left(COALESCE({candidates}, ''), 120)"


def _plain_sqlite(e: str) -> str:
    """SQLite: `is_plain` of the event row `e`."""
    track, orders = _text(MessageType.TRACK), _texts(ORDER_EVENTS)
    return f"""({e}.type IN ({_texts(PLAIN_TYPES)})
              AND NOT ({e}.type = {track} AND {e}.event IN ({orders}))
              AND (json_type({e}.context, '$.traits') IS NOT 'object'
                   OR json_extract({e}.context, '$.traits') = '{{}}')
              AND ({e}.user_id <> '' OR {e}.anonymous_id <> '')
              AND {e}.user_id = trim({e}.user_id)
              AND {e}.anonymous_id = trim({e}.anonymous_id))"""


def _channel_sqlite(e: str) -> str:
    """SQLite: aggregates.last_channel of the event row `e`."""
    blanks = "char(" + ", ".join(str(ord(c)) for c in CHANNEL_BLANKS) + ")"
    candidates = ", ".join(
        f"NULLIF(trim(CASE WHEN json_type({e}.context, '{path}') = 'text' "
        f"THEN json_extract({e}.context, '{path}') END, {blanks}), '')"
        for path in ("$.channel", "$.campaign.source", "$.library.name")
    )
    return f"substr(COALESCE({candidates}, ''), 1, 120)"


def select_sql(e: str) -> str:
    """The routing columns (COLUMNS, in order) of the event row `e`, in this database's SQL
    (the collection API's statement writes them)."""
    if connection.vendor == "postgresql":
        plain, channel = _plain_postgresql(e), _channel_postgresql(e)
    else:
        plain, channel = _plain_sqlite(e), _channel_sqlite(e)
    return f"{e}.user_id, {e}.anonymous_id, {e}.type, {e}.event, {e}.timestamp, {plain}, {channel}"

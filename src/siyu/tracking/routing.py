"""What the resolver routes an event by, decided once, as the event is accepted: its queue
row (QueuedEvent) carries the event's ids, type, name and time, whether it is plain (the
pass for known people may take it, known.py) and its channel (the fold keeps the last one,
aggregates.py). So a resolver batch reads its queue rows rather than its events: it reads
an event in full only when it plans it (pending.py) or counts its products (products.py),
and folds what it resolves from the queue rows it deletes (queue.recorded_sql).

The rules are written twice, in SQL (`plain_sql`, `channel_sql`: the collection API's
statement on PostgreSQL) and in Python (`is_plain`, aggregates.last_channel: elsewhere), and
a test holds them to the same answers."""

from typing import Any

from siyu.tracking.aggregates import CHANNEL_BLANKS, last_channel
from siyu.tracking.models import MessageType
from siyu.tracking.orders import ORDER_EVENTS

PLAIN_TYPES = frozenset({MessageType.TRACK, MessageType.PAGE, MessageType.SCREEN})
# (column, what sqlbulk calls its type) of the routing part of a queue row
COLUMNS = [
    ("user_id", "text"),
    ("anonymous_id", "text"),
    ("type", "text"),
    ("event", "text"),
    ("timestamp", "ts"),
    ("plain", "bool"),
    ("channel", "text"),
]


def is_plain(event) -> bool:
    """Whether the pass for known people may take the event: a track (not an order event),
    page or screen with no `context.traits` to apply and a userId and/or anonymousId without
    surrounding spaces (`plain_sql` says the same in SQL)."""
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
    return "ARRAY[" + ", ".join(_text(str(v)) for v in sorted(values)) + "]::text[]"


def plain_sql(e: str) -> str:
    """PostgreSQL: `is_plain` of the event row `e`, with its constants written in (it runs
    inside statements whose parameters are positional)."""
    track, orders = _text(MessageType.TRACK), _texts(ORDER_EVENTS)
    return f"""({e}.type = ANY({_texts(PLAIN_TYPES)})
              AND NOT ({e}.type = {track} AND {e}.event = ANY({orders}))
              AND (jsonb_typeof({e}.context -> 'traits') IS DISTINCT FROM 'object'
                   OR {e}.context -> 'traits' = '{{}}'::jsonb)
              AND ({e}.user_id <> '' OR {e}.anonymous_id <> '')
              AND {e}.user_id = btrim({e}.user_id)
              AND {e}.anonymous_id = btrim({e}.anonymous_id))"""


# CHANNEL_BLANKS as an escaped string constant (\v has no escape of its own there)
_BLANKS = "E'" + "".join(f"\\x{ord(c):02x}" for c in CHANNEL_BLANKS) + "'"


def _candidate_sql(path: str) -> str:
    """One candidate of `last_channel`: the JSON string at `path`, trimmed, or NULL."""
    return (
        f"NULLIF(btrim(CASE WHEN jsonb_typeof({path}) = 'string' THEN {path} #>> '{{}}' END, "
        f"{_BLANKS}), '')"
    )


def channel_sql(e: str) -> str:
    """PostgreSQL: aggregates.last_channel of the event row `e`."""
    paths = ("-> 'channel'", "-> 'campaign' -> 'source'", "-> 'library' -> 'name'")
    candidates = ", ".join(_candidate_sql(f"{e}.context {path}") for path in paths)
    return f"left(COALESCE({candidates}, ''), 120)"


def select_sql(e: str) -> str:
    """PostgreSQL: the routing columns (COLUMNS, in order) of the event row `e`."""
    return (
        f"{e}.user_id, {e}.anonymous_id, {e}.type, {e}.event, {e}.timestamp, "
        f"{plain_sql(e)}, {channel_sql(e)}"
    )

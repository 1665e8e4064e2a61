"""Per-contact aggregates (ContactStats) and the daily event rollup (DailyEventCount), kept
current on ingest. See docs/tracking.md, "Aggregates".

There is one way to compute them: `recompute(workspace, contact_ids)` rebuilds the rows of
those contacts from the raw processed events and orders, with a few grouped queries and one
bulk write per table for the whole set of contacts. Ingest (a resolver batch), the order API,
refunds and merges call it for the contacts they touched; `siyu rebuild-aggregates` calls it
for every contact. So the incrementally kept rows are the rebuilt rows by construction, and
processing something twice cannot double a count.

Inside a resolver batch the calls made by orders and merges are deferred (`deferred()`): the
batch collects the contact ids and recomputes them once, when it flushes."""

import contextlib
import contextvars
import datetime
import zoneinfo
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    JSONField,
    Max,
    OuterRef,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import TruncDate

from siyu.contacts.models import Contact
from siyu.core import sqlbulk
from siyu.core.models import Workspace
from siyu.tracking.models import (
    ContactStats,
    DailyEventCount,
    Event,
    MessageType,
    Order,
)

CHUNK = 500  # contacts per recompute query (well under SQLite's parameter limit)
COUNTED_TYPES = (MessageType.TRACK, MessageType.PAGE, MessageType.SCREEN, MessageType.IDENTIFY)
STATS_FIELDS = ["order_count", "net_spend_fen", "last_order_at", "last_channel", "last_event_at"]
# What a channel name is trimmed of, the same in Python and in SQL (str.strip() alone would
# also take Unicode spaces, which PostgreSQL's btrim cannot be told about portably).
CHANNEL_BLANKS = " \t\n\r\f\v"

_deferred: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "siyu_aggregates_deferred", default=None
)


@contextlib.contextmanager
def deferred() -> Iterator[set[int]]:
    """Within the block, `touch` only collects contact ids (into the yielded set); the caller
    recomputes them once at the end."""
    touched: set[int] = set()
    token = _deferred.set(touched)
    try:
        yield touched
    finally:
        _deferred.reset(token)


def touch(workspace: Workspace, contact_ids: Iterable[int | None]) -> None:
    """The aggregates of these contacts may have changed: recompute them now, or collect them
    when inside `deferred()`."""
    ids = {c for c in contact_ids if c is not None}
    collecting = _deferred.get()
    if collecting is not None:
        collecting.update(ids)
    elif ids:
        recompute(workspace, ids)


def combine_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    """Merge hook (TrackingConfig.ready, after events and orders moved): the others' rows are
    added to their survivors' (an event or an order belongs to one contact, so sums are
    exact) with one upsert per table, instead of re-reading the survivors' whole history.
    The others' own rows go with them (CASCADE). A survivor whose latest event ties in time
    with an other's is recomputed (the tie is broken by event id, which the rows lack)."""
    if not mapping:
        return
    pairs = sorted(mapping.items())
    daily = DailyEventCount._meta.db_table
    sqlbulk.execute_with_rows(
        f"INSERT INTO {daily} (workspace_id, contact_id, day, event, count) "
        f"SELECT d.workspace_id, v.survivor, d.day, d.event, d.count FROM {daily} d "
        "JOIN {rows} AS v ON d.contact_id = v.other "
        f"WHERE d.workspace_id = {int(workspace.pk)} "
        f"ON CONFLICT (contact_id, day, event) DO UPDATE SET count = {daily}.count + "
        "excluded.count",
        [("other", "int"), ("survivor", "int")],
        pairs,
    )
    rows = {
        s.contact_id: s
        for s in ContactStats.objects.filter(
            workspace=workspace, contact_id__in=set(mapping) | set(mapping.values())
        )
    }
    combined: dict[int, ContactStats] = {}
    ties: set[int] = set()
    for other, survivor in pairs:
        theirs = rows.get(other)
        if theirs is None:
            continue
        mine = combined.get(survivor) or rows.get(survivor)
        if mine is None:
            mine = ContactStats(workspace=workspace, contact_id=survivor, last_channel="")
            mine.order_count = mine.net_spend_fen = 0
        mine.order_count += theirs.order_count
        mine.net_spend_fen += theirs.net_spend_fen
        if theirs.last_order_at and (
            not mine.last_order_at or theirs.last_order_at > mine.last_order_at
        ):
            mine.last_order_at = theirs.last_order_at
        if theirs.last_event_at and mine.last_event_at == theirs.last_event_at:
            ties.add(survivor)
        elif theirs.last_event_at and (
            not mine.last_event_at or theirs.last_event_at > mine.last_event_at
        ):
            mine.last_event_at, mine.last_channel = theirs.last_event_at, theirs.last_channel
        combined[survivor] = mine
    if combined:
        ContactStats.objects.bulk_create(
            list(combined.values()),
            update_conflicts=True,
            unique_fields=["contact"],
            update_fields=STATS_FIELDS,
        )
    touch(workspace, ties)


def recompute(workspace: Workspace, contact_ids: Iterable[int]) -> None:
    """Rebuild the ContactStats and DailyEventCount rows of these contacts from raw data."""
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), CHUNK):
        with transaction.atomic():
            _recompute_chunk(workspace, ids[start : start + CHUNK])


def rebuild(workspace: Workspace, chunk: int = CHUNK) -> int:
    """Recompute every contact of the workspace, `chunk` contacts at a time (each in its own
    transaction); the number of contacts looked at."""
    done, after = 0, 0
    while True:
        ids = list(
            Contact.objects.filter(workspace=workspace, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return done
        with transaction.atomic():
            _recompute_chunk(workspace, ids)
        done += len(ids)
        after = ids[-1]


def fold_processed(workspace: Workspace, event_ids: list[int]) -> None:
    """Fold the events among these that are processed and have a contact into their
    contacts' rows: seen times widened, daily counts added, the last event and channel moved
    forward. The events are read back and folded by `add_processed`. On PostgreSQL the
    resolution statements fold instead, in the same statement (`fold_sql`)."""
    if not event_ids:
        return
    rows = []
    for start in range(0, len(event_ids), CHUNK):
        rows += (
            Event.objects.among(workspace.pk, event_ids[start : start + CHUNK])
            .filter(resolution__contact_id__isnull=False)
            .values_list("resolution__contact_id", "id", "type", "event", "timestamp", "context")
        )
    folded = [(cid, _Folded(pk, type_, name, ts, ctx)) for cid, pk, type_, name, ts, ctx in rows]
    seen: dict[int, tuple[datetime.datetime, datetime.datetime]] = {}
    for cid, event in folded:
        first, last = seen.get(cid, (event.timestamp, event.timestamp))
        seen[cid] = (min(first, event.timestamp), max(last, event.timestamp))
    _extend_seen(seen)
    add_processed(workspace, folded)


class _Folded:
    """What add_processed reads of an event."""

    __slots__ = ("pk", "type", "event", "timestamp", "context")

    def __init__(self, pk, type_, event, timestamp, context):
        self.pk = pk
        self.type = type_
        self.event = event
        self.timestamp = timestamp
        self.context = context


def _extend_seen(seen: dict[int, tuple[datetime.datetime, datetime.datetime]]) -> None:
    """Widen contacts' first/last seen to include (first, last) per contact id."""
    table = Contact._meta.db_table
    sqlbulk.update_from_values(
        table,
        [("id", "int"), ("first_seen", "ts"), ("last_seen", "ts")],
        [(cid, first, last) for cid, (first, last) in sorted(seen.items())],
        f"first_seen_at = {sqlbulk.least(f'{table}.first_seen_at', 'v.first_seen')}, "
        f"last_seen_at = {sqlbulk.greatest(f'{table}.last_seen_at', 'v.last_seen')}",
        where=f"v.first_seen < {table}.first_seen_at OR v.last_seen > {table}.last_seen_at",
    )


def fold_sql(source: str) -> str:
    """PostgreSQL: data-modifying CTEs (for a WITH list; they run to completion though
    nothing reads them) that fold the resolved events of the CTE `source` into their
    contacts' rows, as `add_processed` does: seen times widened, daily counts added, the last
    event and channel moved forward. `source` has the columns id, contact_id (not NULL),
    type, event, timestamp and channel (routing.py); its parameters are `fold_params`.
    The resolution statements end with it (known.py, queue.py), so that an event is folded
    in the statement that records its resolution: exactly once."""
    contacts = Contact._meta.db_table
    stats, daily = ContactStats._meta.db_table, DailyEventCount._meta.db_table
    return f"""
        folded_seen AS (
            UPDATE {contacts} c
               SET first_seen_at = LEAST(c.first_seen_at, s.first_seen),
                   last_seen_at = GREATEST(c.last_seen_at, s.last_seen)
              FROM (SELECT contact_id, min(timestamp) AS first_seen, max(timestamp) AS last_seen
                    FROM {source} GROUP BY contact_id) s
             WHERE c.id = s.contact_id
               AND (s.first_seen < c.first_seen_at OR s.last_seen > c.last_seen_at)
        ), counted AS (
            SELECT contact_id, (timestamp AT TIME ZONE %(fold_tz)s)::date AS day,
                   CASE WHEN type = %(fold_track)s THEN event ELSE type END AS name, count(*)
              FROM {source} WHERE type = ANY(%(fold_counted)s)
             GROUP BY contact_id, day, name
        ), folded_counts AS (
            INSERT INTO {daily} (workspace_id, contact_id, day, event, count)
            SELECT %(fold_ws)s, * FROM counted WHERE contact_id < %(fold_new_from)s
             ORDER BY contact_id, day, name
            ON CONFLICT (contact_id, day, event)
               DO UPDATE SET count = {daily}.count + excluded.count
        ), folded_new_counts AS (
            -- contacts this batch creates have no rows yet: no conflict to look for (a
            -- third less time for a batch of new people)
            INSERT INTO {daily} (workspace_id, contact_id, day, event, count)
            SELECT %(fold_ws)s, * FROM counted WHERE contact_id >= %(fold_new_from)s
             ORDER BY contact_id, day, name
        ), folded_latest AS (
            INSERT INTO {stats} (workspace_id, contact_id, order_count, net_spend_fen,
                                 last_channel, last_event_at)
            SELECT %(fold_ws)s, contact_id, 0, 0, channel, timestamp
              FROM (SELECT DISTINCT ON (contact_id) contact_id, channel, timestamp
                      FROM {source} ORDER BY contact_id, timestamp DESC, id DESC) latest
            ON CONFLICT (contact_id) DO UPDATE
               SET last_event_at = excluded.last_event_at, last_channel = excluded.last_channel
             WHERE {stats}.last_event_at IS NULL
                OR excluded.last_event_at >= {stats}.last_event_at
        )"""


# no contact has an id this large: no contact of a fold is new
NO_NEW_CONTACTS = 1 << 62


def fold_params(workspace: Workspace, new_from: int = NO_NEW_CONTACTS) -> dict[str, Any]:
    """The parameters of `fold_sql`. `new_from`: the smallest id of the contacts the batch
    creates (sqlbulk.reserve_ids; every contact of the fold with an id this large or larger
    is one of them: any other was read before those ids were taken), whose rollup rows are
    inserted without looking for existing ones."""
    return {
        "fold_new_from": new_from,
        "fold_ws": workspace.pk,
        "fold_tz": workspace.timezone,
        "fold_track": MessageType.TRACK,
        "fold_counted": [str(t.value) for t in COUNTED_TYPES],
    }


def add_processed(workspace: Workspace, events: Iterable[tuple[int, Event]]) -> None:
    """Fold events that have just moved to `processed` into their contacts' rows, with two
    set-based upserts: daily counts are added (`count + excluded.count`), and a contact's
    last event and channel move forward only if the new event is later (or as late and
    newer, as `recompute` orders them). Each event is processed exactly once (its resolution
    changes in the same transaction), so this never double counts; `recompute` gives the
    same rows (tests/tracking/test_aggregates.py proves it)."""
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    daily: dict[tuple[int, datetime.date, str], int] = {}
    latest: dict[int, tuple[datetime.datetime, int, Event]] = {}
    for contact_id, event in events:
        if event.type in COUNTED_TYPES:
            name = event.event if event.type == MessageType.TRACK else event.type
            day = event.timestamp.astimezone(tz).date()
            daily[(contact_id, day, name)] = daily.get((contact_id, day, name), 0) + 1
        mark = latest.get(contact_id)
        if mark is None or (event.timestamp, event.pk) > mark[:2]:
            latest[contact_id] = (event.timestamp, event.pk, event)
    stats_table = ContactStats._meta.db_table
    sqlbulk.upsert_values(
        stats_table,
        [
            ("workspace_id", "int"),
            ("contact_id", "int"),
            ("order_count", "int"),
            ("net_spend_fen", "int"),
            ("last_channel", "text"),
            ("last_event_at", "ts"),
        ],
        [
            (workspace.pk, cid, 0, 0, last_channel(event.context), ts)
            for cid, (ts, _, event) in sorted(latest.items())
        ],
        ["contact_id"],
        "last_event_at = excluded.last_event_at, last_channel = excluded.last_channel",
        where=f"{stats_table}.last_event_at IS NULL"
        f" OR excluded.last_event_at >= {stats_table}.last_event_at",
    )
    daily_table = DailyEventCount._meta.db_table
    sqlbulk.upsert_values(
        daily_table,
        [
            ("workspace_id", "int"),
            ("contact_id", "int"),
            ("day", "date"),
            ("event", "text"),
            ("count", "int"),
        ],
        [(workspace.pk, cid, day, name, n) for (cid, day, name), n in sorted(daily.items())],
        ["contact_id", "day", "event"],
        f"count = {daily_table}.count + excluded.count",
    )


def add_orders(workspace: Workspace, orders: Iterable[Order]) -> None:
    """Fold newly created orders into their contacts' rows with one upsert: counts and spend
    are added, the last order time moves forward. An order is created once (its id is unique
    per workspace), so this never double counts."""
    per_contact: dict[int, tuple[int, int, datetime.datetime]] = {}
    for order in orders:
        n, spend, last = per_contact.get(order.contact_id, (0, 0, order.placed_at))
        net = order.total_fen - order.refunded_fen
        per_contact[order.contact_id] = (n + 1, spend + net, max(last, order.placed_at))
    table = ContactStats._meta.db_table
    later = sqlbulk.greatest(
        f"COALESCE({table}.last_order_at, excluded.last_order_at)", "excluded.last_order_at"
    )
    sqlbulk.upsert_values(
        table,
        [
            ("workspace_id", "int"),
            ("contact_id", "int"),
            ("order_count", "int"),
            ("net_spend_fen", "int"),
            ("last_order_at", "ts"),
            ("last_channel", "text"),
        ],
        [
            (workspace.pk, cid, n, spend, last, "")
            for cid, (n, spend, last) in sorted(per_contact.items())
        ],
        ["contact_id"],
        f"order_count = {table}.order_count + excluded.order_count, "
        f"net_spend_fen = {table}.net_spend_fen + excluded.net_spend_fen, "
        f"last_order_at = {later}",
    )


def last_channel(context) -> str:
    """The channel an event came through: context.channel, else context.campaign.source (the
    UTM source), else context.library.name (the SDK), else ""."""
    if not isinstance(context, dict):
        return ""
    candidates = [context.get("channel")]
    for key, sub in (("campaign", "source"), ("library", "name")):
        part = context.get(key)
        candidates.append(part.get(sub) if isinstance(part, dict) else None)
    for value in candidates:
        if isinstance(value, str) and value.strip(CHANNEL_BLANKS):
            return value.strip(CHANNEL_BLANKS)[:120]
    return ""


def _recompute_chunk(workspace: Workspace, ids: list[int]) -> None:
    # only contacts that still exist (merged-away ones are gone with their rows)
    ids = list(Contact.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", flat=True))
    if not ids:
        return
    events = Event.objects.filter(workspace=workspace, resolution__contact_id__in=ids)
    last_event = dict(
        events.values("resolution__contact_id")
        .annotate(last=Max("timestamp"))
        .order_by()
        .values_list("resolution__contact_id", "last")
    )
    orders = {
        cid: (n, spend, last)
        for cid, n, spend, last in Order.objects.filter(workspace=workspace, contact_id__in=ids)
        .values("contact_id")
        .annotate(
            n=Count("id"), spend=Sum(F("total_fen") - F("refunded_fen")), last=Max("placed_at")
        )
        .order_by()
        .values_list("contact_id", "n", "spend", "last")
    }
    latest_context = Subquery(
        Event.objects.filter(resolution__contact_id=OuterRef("pk"))
        .order_by("-resolution__timestamp", "-id")
        .values("context")[:1],
        output_field=JSONField(),
    )
    channels = (
        {
            cid: last_channel(ctx)
            for cid, ctx in Contact.objects.filter(pk__in=list(last_event))
            .annotate(ctx=latest_context)
            .values_list("pk", "ctx")
        }
        if last_event
        else {}
    )

    stats = []
    for cid in ids:
        if cid not in last_event and cid not in orders:
            continue
        n, spend, last_order = orders.get(cid, (0, 0, None))
        stats.append(
            ContactStats(
                workspace=workspace,
                contact_id=cid,
                order_count=n,
                net_spend_fen=spend or 0,
                last_order_at=last_order,
                last_channel=channels.get(cid, ""),
                last_event_at=last_event.get(cid),
            )
        )
    ContactStats.objects.filter(workspace=workspace, contact_id__in=ids).exclude(
        contact_id__in=[s.contact_id for s in stats]
    ).delete()
    if stats:
        ContactStats.objects.bulk_create(
            stats, update_conflicts=True, unique_fields=["contact"], update_fields=STATS_FIELDS
        )

    name = Case(
        When(type=MessageType.TRACK, then=F("event")),
        default=F("type"),
        output_field=CharField(),
    )
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    daily = (
        events.filter(type__in=COUNTED_TYPES)
        .annotate(d=TruncDate("timestamp", tzinfo=tz), ev_name=name)
        .values("resolution__contact_id", "d", "ev_name")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("resolution__contact_id", "d", "ev_name", "n")
    )
    DailyEventCount.objects.filter(workspace=workspace, contact_id__in=ids).delete()
    DailyEventCount.objects.bulk_create(
        [
            DailyEventCount(workspace=workspace, contact_id=cid, day=day, event=ev, count=n)
            for cid, day, ev, n in daily
        ],
        batch_size=CHUNK,
    )

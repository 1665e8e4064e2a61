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
import zoneinfo
from collections.abc import Iterable, Iterator

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
from siyu.core.models import Workspace
from siyu.tracking.models import (
    ContactStats,
    DailyEventCount,
    Event,
    EventStatus,
    MessageType,
    Order,
)

CHUNK = 500  # contacts per recompute query (well under SQLite's parameter limit)
COUNTED_TYPES = (MessageType.TRACK, MessageType.PAGE, MessageType.SCREEN, MessageType.IDENTIFY)
STATS_FIELDS = ["order_count", "net_spend_fen", "last_order_at", "last_channel", "last_event_at"]

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


def recompute_on_merge(workspace: Workspace, survivor: Contact, other: Contact) -> None:
    """Merge hook (TrackingConfig.ready, after events and orders moved): the survivor's rows
    are recomputed; the other's rows go with it (CASCADE)."""
    touch(workspace, [survivor.pk])


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
        if isinstance(value, str) and value.strip():
            return value.strip()[:120]
    return ""


def _recompute_chunk(workspace: Workspace, ids: list[int]) -> None:
    # only contacts that still exist (merged-away ones are gone with their rows)
    ids = list(Contact.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", flat=True))
    if not ids:
        return
    events = Event.objects.filter(
        workspace=workspace, contact_id__in=ids, status=EventStatus.PROCESSED
    )
    last_event = dict(
        events.values("contact_id")
        .annotate(last=Max("timestamp"))
        .order_by()
        .values_list("contact_id", "last")
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
        Event.objects.filter(contact_id=OuterRef("pk"), status=EventStatus.PROCESSED)
        .order_by("-timestamp", "-id")
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
        .values("contact_id", "d", "ev_name")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("contact_id", "d", "ev_name", "n")
    )
    DailyEventCount.objects.filter(workspace=workspace, contact_id__in=ids).delete()
    DailyEventCount.objects.bulk_create(
        [
            DailyEventCount(workspace=workspace, contact_id=cid, day=day, event=ev, count=n)
            for cid, day, ev, n in daily
        ],
        batch_size=CHUNK,
    )

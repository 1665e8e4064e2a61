"""Reads of the tracking app: write keys of a workspace, the ingestion lag that
`siyu check` and the console show, one contact's aggregates for the profile, and the
product catalog."""

import datetime
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.core.errors import NotFound
from siyu.core.models import Workspace
from siyu.core.paging import newest_first_page
from siyu.tracking.models import (
    ContactStats,
    DailyEventCount,
    Event,
    Product,
    QueuedEvent,
    WriteKey,
)
from siyu.tracking.orders import yuan


def write_keys(workspace: Workspace) -> QuerySet[WriteKey]:
    """The workspace's write keys, newest first, revoked ones included."""
    return WriteKey.objects.filter(workspace=workspace).order_by("-id")


def get_write_key_by_prefix(workspace: Workspace, prefix: str) -> WriteKey | None:
    return WriteKey.objects.filter(workspace=workspace, prefix=prefix).first()


@dataclass(frozen=True)
class IngestionLag:
    """Events accepted but not processed yet, and how long the oldest has waited."""

    pending: int
    oldest_received_at: datetime.datetime | None

    @property
    def age_seconds(self) -> float:
        if self.oldest_received_at is None:
            return 0.0
        return max((timezone.now() - self.oldest_received_at).total_seconds(), 0.0)

    def __str__(self) -> str:
        if not self.pending:
            return "no pending events"
        return f"{self.pending} pending event(s), oldest {int(self.age_seconds)}s old"


def ingestion_lag(workspace: Workspace | None = None) -> IngestionLag:
    """The lag of one workspace, or of all of them. Each workspace is read from its part of
    the resolution queue: a count and the oldest queued event, never a scan of processed
    events."""
    if workspace is not None:
        workspace_ids = [workspace.pk]
    else:
        workspace_ids = list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
    pending = 0
    oldest: datetime.datetime | None = None
    for workspace_id in workspace_ids:
        qs = QueuedEvent.objects.filter(workspace_id=workspace_id)
        first_id = qs.order_by("event_id").values_list("event_id", flat=True).first()
        if first_id is None:
            continue
        first = Event.objects.filter(pk=first_id).values_list("received_at", flat=True).get()
        pending += qs.count()
        oldest = first if oldest is None else min(oldest, first)
    return IngestionLag(pending=pending, oldest_received_at=oldest)


# --- one contact's aggregates (the profile's "Activity summary" card) --------------------------

SUMMARY_DAYS = 30


@dataclass(frozen=True)
class ContactSummary:
    """What the aggregates say about one contact: first/last seen, orders and net spend
    (integer fen), the last order and channel, and events per day over the last `days`
    days (oldest first, days in the workspace's time zone, zero-filled)."""

    first_seen_at: datetime.datetime | None
    last_seen_at: datetime.datetime | None
    order_count: int
    net_spend_fen: int
    last_order_at: datetime.datetime | None
    last_channel: str
    last_event_at: datetime.datetime | None
    daily: list[dict[str, Any]]

    @property
    def net_spend_yuan(self) -> str:
        return yuan(self.net_spend_fen)

    @property
    def has_activity(self) -> bool:
        """Any event counted in the window (the chart has something to draw)."""
        return any(row["n"] for row in self.daily)


def contact_summary(
    workspace: Workspace, contact: Contact, days: int = SUMMARY_DAYS
) -> ContactSummary:
    """Read from the aggregates kept on ingest (ContactStats, DailyEventCount), never from the
    raw events: one row by the contact's key, and one grouped read of at most `days` days
    through the (contact, day, event) unique index. Scoped by workspace; the caller has
    already checked that the actor may see the contact."""
    stats = ContactStats.objects.filter(workspace=workspace, contact=contact).first()
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(workspace.timezone)).date()
    since = today - datetime.timedelta(days=days - 1)
    per_day = dict(
        DailyEventCount.objects.filter(
            workspace=workspace, contact=contact, day__gte=since, day__lte=today
        )
        .values_list("day")
        .annotate(n=Sum("count"))
        .values_list("day", "n")
    )
    window = [since + datetime.timedelta(days=i) for i in range(days)]
    return ContactSummary(
        first_seen_at=contact.first_seen_at,
        last_seen_at=contact.last_seen_at,
        order_count=stats.order_count if stats else 0,
        net_spend_fen=stats.net_spend_fen if stats else 0,
        last_order_at=stats.last_order_at if stats else None,
        last_channel=stats.last_channel if stats else "",
        last_event_at=stats.last_event_at if stats else None,
        daily=[{"day": d.isoformat(), "n": int(per_day.get(d) or 0)} for d in window],
    )


# --- the product catalog -----------------------------------------------------------------------

PRODUCT_SEARCH_MAX = 255


def products(workspace: Workspace, q: str = "", category: str = "") -> QuerySet[Product]:
    """The workspace's products; `q` matches a name prefix (the (workspace, name) indexes
    serve it) or a product id exactly, `category` exactly."""
    qs = Product.objects.filter(workspace=workspace)
    q = q.strip()[:PRODUCT_SEARCH_MAX]
    if q:
        qs = qs.filter(Q(name__startswith=q) | Q(product_id=q))
    if category:
        qs = qs.filter(category=category)
    return qs


def product_page(
    qs: QuerySet[Product], cursor: str = "", limit: int = 50
) -> tuple[list[Product], str | None]:
    """One page, newest seen first (last_seen_at desc, id desc), and the next cursor; a
    cursor this list did not write is a ValidationError naming `cursor`."""
    return newest_first_page(qs, "last_seen_at", cursor, limit)


def get_product(workspace: Workspace, product_id: str) -> Product:
    """The workspace's product with this id; NotFound otherwise (another workspace's too)."""
    product = Product.objects.filter(workspace=workspace, product_id=product_id).first()
    if product is None:
        raise NotFound("product not found")
    return product


def product_categories(workspace: Workspace, limit: int = 200) -> list[str]:
    """The categories in use, for the console's filter (the category index serves it)."""
    return list(
        Product.objects.filter(workspace=workspace)
        .exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()[:limit]
    )

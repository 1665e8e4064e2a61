"""Write keys (who may send events) and the raw events they send, as accepted by the
Segment-compatible collection API. See docs/tracking.md."""

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core.models import WorkspaceScoped, unchecked_workspace


class WriteKey(WorkspaceScoped):
    """A key that may only *send* events into one workspace (the Segment "write key").
    It is embedded in web pages and apps, so it grants nothing else. Only a SHA-256 of the
    key is stored; the clear text is shown once, when it is created."""

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"], name="writekey_ws_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class MessageType(models.TextChoices):
    IDENTIFY = "identify", _("Identify")
    TRACK = "track", _("Track")
    PAGE = "page", _("Page")
    SCREEN = "screen", _("Screen")
    GROUP = "group", _("Group")
    ALIAS = "alias", _("Alias")


class EventStatus(models.TextChoices):
    """Where an event stands: `pending` while it waits in the queue (`QueuedEvent`),
    `processed` once identity resolution has decided its contact (`ResolvedEvent`)."""

    PENDING = "pending", _("Pending")
    PROCESSED = "processed", _("Processed")


class EventQuerySet(models.QuerySet):
    def among(self, workspace_id: int, ids) -> "EventQuerySet":
        """The workspace's events among these ids, found by primary key. Without statistics
        SQLite would rather seek an index that starts with the workspace, reading all of its
        events for each chunk of ids; `workspace_id + 0` keeps the scope but is no index key
        (PostgreSQL plans it as well either way)."""
        return self.alias(scope=F("workspace_id") + 0).filter(scope=workspace_id, pk__in=ids)

    def processed(self) -> "EventQuerySet":
        """Events identity resolution has processed (whatever their contact)."""
        return self.filter(resolution__isnull=False)

    def of_contact(self, contact_id: int) -> "EventQuerySet":
        """One contact's events, through the resolution rows' (contact, time) index."""
        return self.filter(resolution__contact_id=contact_id)


class Event(WorkspaceScoped):
    """One accepted Segment message, stored as received (plus the corrected timestamp) and
    never rewritten: what resolution decides goes into `ResolvedEvent`, and the queue of
    events waiting for it is `QueuedEvent`. An event table that only grows costs one index
    entry per event at processing instead of a new version of the whole row in every index
    (docs/tracking.md, "Storage")."""

    # No index of its own: every lookup by workspace has a composite index that starts with
    # it, and a lone workspace index tempts the planner, when statistics lag a burst of
    # ingest, into scanning a whole workspace's events (see known.py).
    workspace = models.ForeignKey(
        "core.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message_id = models.CharField(max_length=255)
    type = models.CharField(max_length=10, choices=MessageType.choices)
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    previous_id = models.CharField(max_length=255, blank=True, default="")  # alias
    group_id = models.CharField(max_length=255, blank=True, default="")  # group
    # The track event name, or the page / screen name.
    event = models.CharField(max_length=255, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # When it happened, corrected for the device's clock: originalTimestamp + (receivedAt - sentAt).
    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = EventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "message_id"], name="event_message_unique")
        ]
        indexes = [
            # segments with event property filters: one event name in a time window
            models.Index(fields=["workspace", "event", "timestamp"], name="event_ws_name_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event or ''} {self.message_id}".strip()

    # What resolution decided, read from the related rows (list views select `resolution`
    # with the events). Read-only: resolution writes ResolvedEvent and QueuedEvent rows.
    def _resolved(self) -> "ResolvedEvent | None":
        try:
            return self.resolution
        except ResolvedEvent.DoesNotExist:
            return None

    @property
    def status(self) -> str:
        return EventStatus.PENDING if self._resolved() is None else EventStatus.PROCESSED

    @property
    def contact_id(self) -> int | None:
        resolved = self._resolved()
        return None if resolved is None else resolved.contact_id

    @property
    def contact(self):
        resolved = self._resolved()
        return None if resolved is None else resolved.contact

    @property
    def note(self) -> str:
        """What resolution noted (`ResolvedEvent.note`), or why it failed while the event
        waits in the queue (`QueuedEvent.error`)."""
        resolved = self._resolved()
        if resolved is not None:
            return resolved.note
        queued = QueuedEvent.objects.filter(workspace_id=self.workspace_id, event_id=self.pk)
        return queued.values_list("error", flat=True).first() or ""


class QueuedEvent(models.Model):
    """An accepted event waiting for identity resolution, in the same transaction as the
    event: the resolver takes a workspace's queue in event-id order and deletes the rows of
    each batch it processes. `error` says why an event failed and stays queued (it is
    retried by the next run and shows in the ingestion lag)."""

    # the primary key is the only index: (workspace, event id) is the resolver's read order
    pk = models.CompositePrimaryKey("workspace_id", "event_id")
    workspace = unchecked_workspace()
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    error = models.TextField(blank=True, default="")
    # What the resolver routes the event by, copied and decided as it is accepted
    # (routing.py), so that a batch reads these narrow rows rather than its events.
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    type = models.CharField(max_length=10, blank=True, default="")
    event_name = models.CharField(max_length=255, blank=True, default="", db_column="event")
    timestamp = models.DateTimeField(null=True, blank=True)
    plain = models.BooleanField(default=False)  # routing.is_plain
    channel = models.CharField(max_length=120, blank=True, default="")  # last_channel

    def __str__(self) -> str:
        return f"queued event {self.event_id}"


class ResolvedEvent(models.Model):
    """What identity resolution decided for one event: its contact (none when the event had
    no usable identifier) and its notes, one row per processed event. A merge moves these
    rows to the survivor. The event's time is kept here too, so that a contact's events are
    read newest first from this table's index alone."""

    event = models.OneToOneField(
        Event,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="resolution",
        db_constraint=False,
    )
    workspace = unchecked_workspace()
    # indexed by resolved_contact_time (contact first). No database constraint: a batch
    # writes every event's contact at once, and contacts are only deleted through the ORM,
    # which sets this to NULL first.
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resolved_events",
        db_index=False,
        db_constraint=False,
    )
    timestamp = models.DateTimeField()
    # What identity resolution could not use (an invalid phone, an attribute that failed the
    # schema, an identity conflict, ...), one "field: reason" per line; never a clear phone
    # number or email.
    note = models.TextField(blank=True, default="")
    processed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # a contact's events, newest first
            models.Index(fields=["contact", "-timestamp"], name="resolved_contact_time"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} -> contact {self.contact_id}"


class IngestState(WorkspaceScoped):
    """One row per workspace: the lease of the task draining its pending events. A drainer
    claims it with one atomic UPDATE (`running_until` empty or past), so only one runs per
    workspace at a time, on SQLite and PostgreSQL alike; a crashed drainer's lease expires."""

    running_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="ingeststate_unique")]


class OrderStatus(models.TextChoices):
    COMPLETED = "completed", _("Completed")
    REFUNDED = "refunded", _("Refunded")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")


class OrderSource(models.TextChoices):
    API = "api", _("API")
    EVENT = "event", _("Event")
    IMPORT = "import", _("Import")


class Order(WorkspaceScoped):
    """A brand's order, from the server API or an `Order Completed` event (orders.py). Money
    is integer fen (分). `external_id` is the brand's order id: unique per workspace, it makes
    creating an order idempotent."""

    contact = models.ForeignKey(  # indexed by order_contact_time (contact first)
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,
    )
    external_id = models.CharField(max_length=255)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.COMPLETED
    )
    currency = models.CharField(max_length=3, default="CNY")
    total_fen = models.BigIntegerField()
    discount_fen = models.BigIntegerField(default=0)
    shipping_fen = models.BigIntegerField(default=0)
    tax_fen = models.BigIntegerField(default=0)
    refunded_fen = models.BigIntegerField(default=0)
    channel = models.CharField(max_length=120, blank=True, default="")
    placed_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=OrderSource.choices, default=OrderSource.API)
    message_id = models.CharField(max_length=255, blank=True, default="")  # the event's
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"], name="order_external_unique"
            )
        ]
        indexes = [models.Index(fields=["contact", "-placed_at"], name="order_contact_time")]

    def __str__(self) -> str:
        return self.external_id


class OrderItem(WorkspaceScoped):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product_id = models.CharField(max_length=255, blank=True, default="")
    sku = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    category = models.CharField(max_length=255, blank=True, default="")
    price_fen = models.BigIntegerField()
    quantity = models.IntegerField(default=1)
    line_total_fen = models.BigIntegerField()


class OrderRefund(WorkspaceScoped):
    """One refund of an order. A non-empty `refund_id` (the caller's, or `event:<messageId>`)
    is unique per order, so a retried refund is recognised and not applied twice."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    refund_id = models.CharField(max_length=255, blank=True, default="")
    amount_fen = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "refund_id"],
                condition=~models.Q(refund_id=""),
                name="orderrefund_id_unique",
            )
        ]


# The aggregates below are derived rows written by the ten thousand per resolver batch: like
# the segment tables, they carry no database constraint (PostgreSQL checked every row's keys
# at commit). Contacts and workspaces are deleted through the ORM, which deletes these first.


class ContactStats(WorkspaceScoped):
    """Per-contact aggregates kept current on ingest (aggregates.py), one row per contact that
    has at least one processed event or one order. Always equal to a recompute from the raw
    events and orders: `siyu rebuild-aggregates` rebuilds them. Money is integer fen."""

    workspace = unchecked_workspace(db_index=True)
    contact = models.OneToOneField(
        "contacts.Contact", on_delete=models.CASCADE, related_name="stats", db_constraint=False
    )
    order_count = models.IntegerField(default=0)
    # the sum of order totals minus the sum of refunds
    net_spend_fen = models.BigIntegerField(default=0)
    last_order_at = models.DateTimeField(null=True, blank=True)
    # of the latest event: context.channel, else context.campaign.source, else
    # context.library.name, else ""
    last_channel = models.CharField(max_length=120, blank=True, default="")
    last_event_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"stats of contact {self.contact_id}"


class DailyEventCount(WorkspaceScoped):
    """How many events of one name a contact sent on one day (the workspace's time zone):
    the rollup segments read. `event` is the track event name, or "page" / "screen" /
    "identify" for those message types (group and alias are not counted)."""

    # (contact, day, name) is the row's identity: no serial id (ingest writes about one row
    # per event, and an id's index cost every insert)
    pk = models.CompositePrimaryKey("contact_id", "day", "event")
    # indexed by dailyevent_ws_event_day (workspace first): a lone index would only cost writes
    workspace = unchecked_workspace()
    contact = models.ForeignKey(  # indexed by the primary key (contact first)
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="daily_event_counts",
        db_index=False,
        db_constraint=False,
    )
    day = models.DateField()
    event = models.CharField(max_length=255)
    count = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "event", "day"], name="dailyevent_ws_event_day")
        ]


class Product(WorkspaceScoped):
    """One product of the brand's catalog, built from the Segment e-commerce events that name
    it (products.py; docs/tracking.md, "Products"). `product_id` is the event's `product_id`,
    else its `sku`. The attributes follow the latest event by timestamp: an older event that
    arrives late never overwrites them (it only fills blanks), and an empty value never
    clears one. `views` / `adds` count `Product Viewed` / `Product Added` events."""

    # No index of its own: the unique constraint and every index start with it (as Event).
    workspace = models.ForeignKey(
        "core.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    product_id = models.CharField(max_length=255)
    sku = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    category = models.CharField(max_length=255, blank=True, default="")
    brand = models.CharField(max_length=255, blank=True, default="")
    variant = models.CharField(max_length=255, blank=True, default="")
    price_fen = models.BigIntegerField(null=True, blank=True)
    # of the price (3 letters); empty while no price is known
    currency = models.CharField(max_length=3, blank=True, default="")
    url = models.CharField(max_length=2048, blank=True, default="")
    image_url = models.CharField(max_length=2048, blank=True, default="")
    # the timestamps of the earliest and the latest event naming the product
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    views = models.BigIntegerField(default=0)
    adds = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "product_id"], name="product_id_unique")
        ]
        indexes = [
            # the catalog, newest seen first (keyset paged)
            models.Index(fields=["workspace", "-last_seen_at", "-id"], name="product_ws_seen"),
            models.Index(
                fields=["workspace", "category", "-last_seen_at", "-id"],
                name="product_ws_category",
            ),
            # name-prefix search (PostgreSQL also gets a varchar_pattern_ops index for LIKE,
            # see migration 0007)
            models.Index(fields=["workspace", "name", "id"], name="product_ws_name"),
        ]

    def __str__(self) -> str:
        return self.name or self.product_id

"""The product catalog, built from the Segment e-commerce events of each resolver batch. See
docs/tracking.md, "Products".

A resolver batch reads its product events as it starts (`read_events`, behind the pass
for known people) and folds their products in memory while the server writes the batch
(`catalog`, one row per product); at its end, in its transaction, it writes them with one
upsert (`record`) if every event of the batch was processed, else `products_from_batch`
reads the processed ones again.

The attributes follow the latest event by timestamp (ties: the later-received): a later
event's non-empty values win, an older one arriving late only fills blanks, an empty or
invalid value never clears one. `views` and `adds` are added (`views = views +
excluded.views`). An event is processed exactly once, in the transaction that counts it, so
a batch is counted once and a retried request (same messageIds, already stored) counts
nothing."""

import datetime
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from siyu.core import sqlbulk
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.tracking.models import Event, MessageType, Product, ResolvedEvent
from siyu.tracking.orders import ORDER_COMPLETED, _text, parse_money
from siyu.tracking.pending import join_events

log = logging.getLogger(__name__)

PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
# Segment v2 events about one product: the properties are the product.
SINGLE_PRODUCT_EVENTS = frozenset(
    {
        PRODUCT_VIEWED,
        "Product Clicked",
        PRODUCT_ADDED,
        "Product Removed",
        "Product Added to Wishlist",
        "Product Removed from Wishlist",
        "Product Shared",
        "Product Reviewed",
    }
)
# Events with a `products` list.
PRODUCT_LIST_EVENTS = frozenset(
    {
        "Product List Viewed",
        "Product List Filtered",
        ORDER_COMPLETED,
        "Checkout Started",
        "Cart Viewed",
    }
)
PRODUCT_EVENTS = SINGLE_PRODUCT_EVENTS | PRODUCT_LIST_EVENTS
ID_LENGTH = 255
# Text attributes and their longest accepted value (a longer one is skipped).
TEXT_FIELDS = (
    ("sku", 255),
    ("name", 255),
    ("category", 255),
    ("brand", 255),
    ("variant", 255),
    ("url", 2048),
    ("image_url", 2048),
)
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


@dataclass
class _Seen:
    """One product as the batch's events describe it, folded in (timestamp, id) order."""

    first: datetime.datetime
    last: datetime.datetime
    text: dict[str, str] = field(default_factory=dict)
    price_fen: int | None = None
    currency: str = ""
    views: int = 0
    adds: int = 0


def _field(value: Any, max_length: int) -> str:
    """A text property, "" when absent or invalid (not a string or a whole number, too long)."""
    try:
        return _text(value, "", max_length)
    except ValidationError:
        return ""


def _price(value: Any) -> int | None:
    """Yuan to fen as orders parse it; None when absent or invalid (3 decimals, negative…)."""
    if value is None or value == "":
        return None
    try:
        return parse_money(value, "price")
    except ValidationError:
        return None


def _currency(value: Any) -> str:
    return value.upper() if isinstance(value, str) and _CURRENCY.match(value) else ""


def _items(name: str, props: dict[str, Any]) -> list[dict[str, Any]]:
    if name in SINGLE_PRODUCT_EVENTS:
        return [props]
    products = props.get("products")
    if not isinstance(products, list):
        return []
    return [p for p in products if isinstance(p, dict)]


def fold(
    workspace: Workspace, rows: list[tuple[int, str, Any, datetime.datetime]]
) -> dict[str, _Seen]:
    """The batch's products by product id, from (event id, name, properties, timestamp) rows:
    per attribute the latest non-empty value, the first and last timestamps, the counts."""
    seen: dict[str, _Seen] = {}
    for _, name, props, ts in sorted(rows, key=lambda r: (r[3], r[0])):
        if not isinstance(props, dict):
            continue
        event_currency = _currency(props.get("currency"))
        for item in _items(name, props):
            product_id = _field(item.get("product_id"), ID_LENGTH) or _field(
                item.get("sku"), ID_LENGTH
            )
            if not product_id:
                continue
            product = seen.get(product_id)
            if product is None:
                product = seen[product_id] = _Seen(first=ts, last=ts)
            product.last = ts  # rows are in timestamp order
            for key, max_length in TEXT_FIELDS:
                value = _field(item.get(key), max_length)
                if value:
                    product.text[key] = value
            price = _price(item.get("price"))
            if price is not None:
                product.price_fen = price
                product.currency = (
                    _currency(item.get("currency")) or event_currency or workspace.currency
                )
            if name == PRODUCT_VIEWED:
                product.views += 1
            elif name == PRODUCT_ADDED:
                product.adds += 1
    return seen


def read_events(
    workspace: Workspace, ids: list[int], processed: bool = True
) -> Callable[[], list[tuple[int, str, Any, datetime.datetime]]]:
    """(id, event, properties, timestamp) of the product events among `ids`, the processed
    ones only unless `processed` is False: a function that returns them. On PostgreSQL,
    inside `sqlbulk.pipelined()`, the read is only sent and that function waits for it."""
    if not ids:
        return lambda: []
    names = sorted(PRODUCT_EVENTS)
    if connection.vendor != "postgresql":
        events = Event.objects.among(workspace.pk, ids)
        events = events.processed() if processed else events
        rows = list(
            events.filter(type=MessageType.TRACK, event__in=names).values_list(
                "id", "event", "properties", "timestamp"
            )
        )
        return lambda: rows
    sql = (
        "SELECT e.id, e.event, e.properties, e.timestamp FROM unnest(%(ids)b::bigint[]) AS ids(id) "
        f"{join_events('ids.id', 'id, type, event, properties, timestamp')} "
        "WHERE e.type = %(track)s AND e.event = ANY(%(names)s)"
    )
    if processed:
        resolved = ResolvedEvent._meta.db_table
        sql += f" AND EXISTS (SELECT 1 FROM {resolved} r WHERE r.event_id = e.id)"
    params = {
        "ids": sqlbulk.BigIntArray(ids),
        "ws": workspace.pk,
        "track": MessageType.TRACK,
        "names": names,
    }
    return sqlbulk.send(sql, params)


COLUMNS = [
    ("workspace_id", "int"),
    ("product_id", "text"),
    *[(key, "text") for key, _ in TEXT_FIELDS],
    ("price_fen", "int"),
    ("currency", "text"),
    ("first_seen_at", "ts"),
    ("last_seen_at", "ts"),
    ("views", "int"),
    ("adds", "int"),
    ("updated_at", "ts"),
]


def _assignments(table: str) -> str:
    """ON CONFLICT … DO UPDATE SET: later-timestamped values win, older ones fill blanks."""
    newer = f"excluded.last_seen_at >= {table}.last_seen_at"
    parts = [
        f"{key} = CASE WHEN {newer} THEN COALESCE(NULLIF(excluded.{key}, ''), {table}.{key}) "
        f"ELSE COALESCE(NULLIF({table}.{key}, ''), excluded.{key}) END"
        for key, _ in TEXT_FIELDS
    ]
    # the currency goes with the price
    takes_price = f"excluded.price_fen IS NOT NULL AND ({newer} OR {table}.price_fen IS NULL)"
    parts += [
        f"price_fen = CASE WHEN {takes_price} THEN excluded.price_fen ELSE {table}.price_fen END",
        f"currency = CASE WHEN {takes_price} THEN excluded.currency ELSE {table}.currency END",
        f"first_seen_at = {sqlbulk.least(f'{table}.first_seen_at', 'excluded.first_seen_at')}",
        f"last_seen_at = {sqlbulk.greatest(f'{table}.last_seen_at', 'excluded.last_seen_at')}",
        f"views = {table}.views + excluded.views",
        f"adds = {table}.adds + excluded.adds",
        "updated_at = excluded.updated_at",
    ]
    return ", ".join(parts)


def products_from_batch(workspace: Workspace, event_ids: list[int]) -> None:
    """Fold the product events among these that are processed into the catalog: one read,
    one upsert."""
    if event_ids:
        record(workspace, catalog(workspace, read_events(workspace, event_ids)()))


def catalog(
    workspace: Workspace, rows: list[tuple[int, str, Any, datetime.datetime]]
) -> dict[str, _Seen]:
    """`fold`, which never raises: should it fail, the catalog misses these events (logged)."""
    try:
        return fold(workspace, rows)
    except Exception:
        log.exception("products of %d events not recorded", len(rows))
        return {}


def record(workspace: Workspace, seen: dict[str, _Seen]) -> None:
    """Write the folded products with one upsert. This never raises: should it fail, the
    catalog misses this batch (logged) and its events stay processed."""
    if not seen:
        return
    now = timezone.now()
    rows = [
        (
            workspace.pk,
            product_id,
            *[p.text.get(key, "") for key, _ in TEXT_FIELDS],
            p.price_fen,
            p.currency if p.price_fen is not None else "",
            p.first,
            p.last,
            p.views,
            p.adds,
            now,
        )
        for product_id, p in sorted(seen.items())
    ]
    table = Product._meta.db_table
    try:
        with transaction.atomic():  # a failure rolls back this alone
            sqlbulk.upsert_values(
                table, COLUMNS, rows, ["workspace_id", "product_id"], _assignments(table)
            )
    except Exception:
        log.exception("products of %d events not recorded", len(rows))

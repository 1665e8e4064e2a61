"""The synthetic pool of bench/segments.py, written with INSERT … SELECT over a number series
so that 1,000,000 contacts, 20,000,000 events and 3,000,000 orders take minutes, not hours.

Deterministic without a random generator: every "random" draw is a hash of the row number
and a salt (`u(i, k)` in [0, 1)), the same on PostgreSQL and SQLite. Activity is skewed
(a few contacts send most events), events are written in time order as a live system
stores them, over the 365 days before `NOW`. The daily event rollup and the per-contact
stats are then built from those rows in SQL, as `rebuild-aggregates` would."""

import datetime
import time

from django.db import connection, transaction

NOW = datetime.datetime(2026, 11, 20, 4, 0, tzinfo=datetime.UTC)
DAYS = 365
EVENTS = ["Product Viewed", "Product Added", "page", "Coupon Claimed", "Video Played"]
CITIES = ["上海", "北京", "杭州", "成都", "深圳", "广州", "南京", "武汉"]
SOURCES = ["store_qr", "wecom", "mini_program", "douyin", "xiaohongshu", "referral"]
CATEGORIES = ["彩妆", "护肤", "香水", "个护", "礼盒"]
PRIMES = [2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245, 40503, 97787]


def u(i: str, k: int) -> str:
    """SQL for a deterministic draw in [0, 1) from the integer expression `i` and salt k."""
    a, b = PRIMES[k % len(PRIMES)], PRIMES[(k + 3) % len(PRIMES)] + 7919 * k
    inner = f"((({i}) * {a} + {b}) % 4294967296)"
    mixed = f"(({inner} * 1664525 + 1013904223) % 4294967296)"
    if connection.vendor == "postgresql":
        return f"({mixed}::float8 / 4294967296)"
    return f"({mixed} / 4294967296.0)"


def whole(expr: str) -> str:
    """SQL truncating a non-negative number to an integer (PostgreSQL's CAST rounds)."""
    if connection.vendor == "postgresql":
        return f"floor({expr})::bigint"
    return f"CAST({expr} AS INTEGER)"


def pick(values: list[str], i: str, k: int) -> str:
    """SQL choosing one of `values` by a draw."""
    cases = " ".join(
        f"WHEN {u(i, k)} < {(n + 1) / len(values):.6f} THEN '{v}'" for n, v in enumerate(values)
    )
    return f"(CASE {cases} ELSE '{values[-1]}' END)"


def series(n: int) -> str:
    """A FROM item of the integers 1..n named s(i)."""
    if connection.vendor == "postgresql":
        return f"generate_series(1::bigint, {n}) AS s(i)"
    return (
        f"(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {n}) "
        "SELECT i FROM r) AS s"
    )


def ts(seconds_before_now: str) -> str:
    """SQL for the timestamp `seconds_before_now` seconds before NOW, as Django stores it."""
    if connection.vendor == "postgresql":
        return f"(timestamptz '{NOW.isoformat()}' - make_interval(secs => {seconds_before_now}))"
    base = NOW.strftime("%Y-%m-%d %H:%M:%S")
    shift = f"'-' || CAST({seconds_before_now} AS INTEGER) || ' seconds'"
    return f"strftime('%Y-%m-%d %H:%M:%f', '{base}', {shift})"


def day_of(column: str) -> str:
    """SQL for the calendar day of a timestamp column in Asia/Shanghai."""
    if connection.vendor == "postgresql":
        return f"(({column}) AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({column}, '+8 hours')"


def run(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)  # no parameters: "%" is the modulo operator here
        return cursor.rowcount


def seed(workspace_id: int, contacts: int, events: int, orders: int, log=print) -> dict:
    """Fill the workspace; returns seconds per table."""
    from siyu.contacts.models import Consent, Contact, ContactTag, Identity, Tag, TagGroup
    from siyu.tracking.models import (
        ContactStats,
        DailyEventCount,
        Event,
        Order,
        OrderItem,
    )

    t = {m: m._meta.db_table for m in (Contact, Identity, Tag, TagGroup, ContactTag, Consent)}
    t |= {m: m._meta.db_table for m in (Event, DailyEventCount, Order, OrderItem, ContactStats)}
    ws = workspace_id
    seconds: dict[str, float] = {}
    if connection.vendor == "postgresql":
        run("SET max_parallel_workers_per_gather = 0")

    def step(name: str, sql: str) -> None:
        started = time.perf_counter()
        with transaction.atomic():
            rows = run(sql)
        seconds[name] = round(time.perf_counter() - started, 1)
        log(f"  {name}: {rows:,} rows in {seconds[name]:.0f} s")

    first_seen = f"{u('i', 1)} * {DAYS * 2 * 86400}"
    last_seen = f"({first_seen}) * {u('i', 8)}"
    step(
        "contacts",
        f"INSERT INTO {t[Contact]} (workspace_id, name, gender, birthday, province, city, source,"
        " attributes, first_seen_at, last_seen_at, created_at, updated_at) "
        f"SELECT {ws}, '客户' || i, {pick(['female', 'female', 'male', 'unknown'], 'i', 2)}, "
        f"CASE WHEN {u('i', 3)} < 0.6 THEN "
        + (
            f"date '1970-01-01' + ({u('i', 4)} * 12000)::int"
            if connection.vendor == "postgresql"
            else f"date('1970-01-01', '+' || CAST({u('i', 4)} * 12000 AS INTEGER) || ' days')"
        )
        + f" END, '', {pick(CITIES, 'i', 5)}, {pick(SOURCES, 'i', 6)}, "
        + (
            f"jsonb_build_object('vip_level', floor({u('i', 7)} * 5)::int)"
            if connection.vendor == "postgresql"
            else f"json_object('vip_level', CAST({u('i', 7)} * 5 AS INTEGER))"
        )
        + f", {ts(first_seen)}, {ts(last_seen)}, {ts(first_seen)}, "
        f"{ts(first_seen)} FROM {series(contacts)}",
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id) FROM {t[Contact]} WHERE workspace_id = {ws}")
        base = cursor.fetchone()[0] - 1  # contact i is id base + i
    # most events come from a few people: contact = n * u^3
    draw = u("i", 10)
    who = f"({base} + 1 + {whole(f'{contacts} * {draw} * {draw} * {draw}')})"
    when = f"{DAYS * 86400} - i * {DAYS * 86400.0 / events:.6f}"  # in time order
    props = (
        f"jsonb_build_object('price', floor({u('i', 11)} * 500)::int, 'product_id', "
        f"'sku-' || floor({u('i', 12)} * 300)::int)"
        if connection.vendor == "postgresql"
        else f"json_object('price', CAST({u('i', 11)} * 500 AS INTEGER), 'product_id', "
        f"'sku-' || CAST({u('i', 12)} * 300 AS INTEGER))"
    )
    name = pick(EVENTS, "i", 13)
    kind = f"CASE WHEN {name} = 'page' THEN 'page' ELSE 'track' END"
    step(
        "events",
        f"INSERT INTO {t[Event]} (workspace_id, message_id, type, user_id, anonymous_id,"
        " previous_id, group_id, event, properties, traits, context, timestamp, received_at,"
        " status, contact_id, processed_at, error, created_at) "
        f"SELECT {ws}, 'bench-' || i, {kind}, '', 'a-' || i, '', '', "
        f"CASE WHEN {name} = 'page' THEN '' ELSE {name} END, {props}, "
        + ("'{}'::jsonb, '{}'::jsonb" if connection.vendor == "postgresql" else "'{}', '{}'")
        + f", {ts(when)}, {ts(when)}, 'processed', {who}, {ts(when)}, '', {ts(when)} "
        f"FROM {series(events)}",
    )
    step(
        "daily counts",
        f"INSERT INTO {t[DailyEventCount]} (workspace_id, contact_id, day, event, count) "
        f"SELECT {ws}, contact_id, {day_of('timestamp')}, "
        "CASE WHEN type = 'track' THEN event ELSE type END, count(*) "
        f"FROM {t[Event]} WHERE workspace_id = {ws} GROUP BY 2, 3, 4",
    )
    draw = u("i", 20)
    buyer = f"({base} + 1 + {whole(f'{contacts} * 0.7 * {draw} * {draw}')})"
    amount = whole(f"{u('i', 23)} * {u('i', 23)} * 200000")
    placed = f"{u('i', 21)} * {DAYS * 2 * 86400}"
    step(
        "orders",
        f"INSERT INTO {t[Order]} (workspace_id, contact_id, external_id, status, currency,"
        " total_fen, discount_fen, shipping_fen, tax_fen, refunded_fen, channel, placed_at,"
        " source, message_id, created_at, updated_at) "
        f"SELECT {ws}, {buyer}, 'o-' || i, "
        f"CASE WHEN {u('i', 22)} < 0.03 THEN 'refunded' ELSE 'completed' END, 'CNY', "
        f"1000 + {amount}, 0, 0, 0, "
        f"CASE WHEN {u('i', 22)} < 0.03 THEN 1000 ELSE 0 END, 'mini_program', {ts(placed)}, "
        f"'import', '', {ts(placed)}, {ts(placed)} FROM {series(orders)}",
    )
    step(
        "order items",
        f"INSERT INTO {t[OrderItem]} (workspace_id, order_id, product_id, sku, name, category,"
        " price_fen, quantity, line_total_fen) "
        f"SELECT {ws}, id, 'sku-' || (id % 300), '', '', "
        f"{pick(CATEGORIES, 'id', 24)}, total_fen, 1, total_fen "
        f"FROM {t[Order]} WHERE workspace_id = {ws}",
    )
    step(
        "contact stats",
        f"INSERT INTO {t[ContactStats]} (workspace_id, contact_id, order_count, net_spend_fen,"
        " last_order_at, last_channel, last_event_at) "
        f"SELECT {ws}, c.id, coalesce(o.n, 0), coalesce(o.spend, 0), o.last, 'mini_program', "
        f"e.last FROM {t[Contact]} c "
        f"LEFT JOIN (SELECT contact_id, count(*) AS n, sum(total_fen - refunded_fen) AS spend, "
        f"max(placed_at) AS last FROM {t[Order]} WHERE workspace_id = {ws} GROUP BY contact_id)"
        " o ON o.contact_id = c.id "
        f"LEFT JOIN (SELECT contact_id, max(timestamp) AS last FROM {t[Event]} "
        f"WHERE workspace_id = {ws} GROUP BY contact_id) e ON e.contact_id = c.id "
        f"WHERE c.workspace_id = {ws} AND (o.n IS NOT NULL OR e.last IS NOT NULL)",
    )
    step(
        "phones",
        f"INSERT INTO {t[Identity]} (workspace_id, contact_id, kind, app_id, value, value_enc,"
        " value_hash, masked, created_at) "
        f"SELECT {ws}, {base} + i, 'phone', '', '', 'bench', 'bench-phone-' || i, "
        f"'139****' || substr('0000' || (i % 10000), -4, 4), {ts('0')} "
        f"FROM {series(contacts)} WHERE {u('i', 30)} < 0.6"
        if connection.vendor != "postgresql"
        else f"INSERT INTO {t[Identity]} (workspace_id, contact_id, kind, app_id, value,"
        " value_enc, value_hash, masked, created_at) "
        f"SELECT {ws}, {base} + i, 'phone', '', '', 'bench', 'bench-phone-' || i, "
        f"'139****' || lpad((i % 10000)::text, 4, '0'), {ts('0')} "
        f"FROM {series(contacts)} WHERE {u('i', 30)} < 0.6",
    )
    with transaction.atomic():
        group = TagGroup.objects.create(workspace_id=ws, name="压测标签")
        tags = Tag.objects.bulk_create(
            [Tag(workspace_id=ws, group=group, name=f"标签{n}") for n in range(10)]
        )
    first_tag = tags[0].pk
    step(
        "tags",
        f"INSERT INTO {t[ContactTag]} (workspace_id, contact_id, tag_id, created_at) "
        f"SELECT {ws}, {base} + i, {first_tag} + {whole(u('i', 31) + ' * 10')}, "
        f"{ts('0')} FROM {series(contacts)} WHERE {u('i', 32)} < 0.3",
    )
    step(
        "consent",
        f"INSERT INTO {t[Consent]} (workspace_id, contact_id, channel, status, source,"
        " recorded_at) "
        f"SELECT {ws}, {base} + i, 'sms', "
        f"CASE WHEN {u('i', 33)} < 0.9 THEN 'granted' ELSE 'withdrawn' END, 'bench', "
        f"{ts('0')} FROM {series(contacts)} WHERE {u('i', 34)} < 0.5",
    )
    if connection.vendor == "postgresql":
        started = time.perf_counter()
        run("ANALYZE")
        seconds["analyze"] = round(time.perf_counter() - started, 1)
    return seconds

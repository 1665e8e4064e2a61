"""The synthetic pool of bench/reach.py: contacts, phones, SMS consent, two static segments,
and (per run) an outbox history of messages sent in the last 24 hours.

Deterministic without a random generator, as bench/segment_pool.py: every draw is a hash
of the contact's number i (contact i is id base + i) and a salt, `u(i, k)` in SQL and its
twin `draw(i, k)` in Python, equal bit for bit. Everything is written with INSERT … SELECT
over a number series except the phones: their `value_enc` must be real Fernet tokens (the
sender decrypts them), so they are encrypted in Python and written with COPY on
PostgreSQL, executemany on SQLite.

| draw | share | what |
| --- | --- | --- |
| `PHONE` | 90% | a phone identity (+86 138…, encrypted, hashed, masked as the product does) |
| `CONSENT` | 80% / 5% | SMS consent granted / withdrawn (the other 15% have none) |
| `HISTORY` | 10% | an SMS sent 1–23 hours before the run (the sms/day cap of 1 stops them) |
| `COMPLAINT` | 2% | in the static segment 近期投诉 (excluded by the broadcast) |

Every contact is in the static segment 全部会员."""

import datetime
import time

from django.db import connection, transaction
from segment_pool import PRIMES, pick, run, series, u

PHONE, CONSENT, HISTORY, COMPLAINT, HOURS = 40, 41, 42, 43, 44
SHARE = {"phone": 0.9, "granted": 0.80, "withdrawn": 0.05, "history": 0.10, "complaint": 0.02}
ALL_MEMBERS, COMPLAINTS = "全部会员", "近期投诉"
CITIES = ["上海", "北京", "杭州", "成都", "深圳", "广州", "南京", "武汉"]
SEEDED_AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def draw(i: int, k: int) -> float:
    """Python twin of segment_pool.u(i, k): the same draw in [0, 1)."""
    a, b = PRIMES[k % len(PRIMES)], PRIMES[(k + 3) % len(PRIMES)] + 7919 * k
    inner = (i * a + b) % 4294967296
    return ((inner * 1664525 + 1013904223) % 4294967296) / 4294967296


def phone_of(i: int) -> str:
    return f"+86{13_800_000_000 + i}"


def ts(moment: datetime.datetime, seconds_before: str = "0") -> str:
    """SQL for `seconds_before` (an SQL expression) seconds before `moment`, as Django
    stores date-times."""
    moment = moment.astimezone(datetime.UTC)
    if connection.vendor == "postgresql":
        return f"(timestamptz '{moment.isoformat()}' - make_interval(secs => {seconds_before}))"
    base = moment.strftime("%Y-%m-%d %H:%M:%S")
    shift = f"'-' || CAST({seconds_before} AS INTEGER) || ' seconds'"
    return f"strftime('%Y-%m-%d %H:%M:%f', '{base}', {shift})"


def contact_base(workspace_id: int, contacts: int) -> int:
    """The id before contact 1 (contact i is id base + i); checks the ids are contiguous."""
    from siyu.contacts.models import Contact

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT min(id), max(id), count(*) FROM {Contact._meta.db_table} "
            "WHERE workspace_id = %s",
            [workspace_id],
        )
        low, high, count = cursor.fetchone()
    if count != contacts or high - low + 1 != contacts:
        raise SystemExit(f"the pool's contact ids are not contiguous ({low}..{high}, {count})")
    return low - 1


def seed(workspace, contacts: int, log=print) -> dict[str, float]:
    """Fill the workspace: contacts, phones, consent, the two static segments. Seconds per
    step."""
    from siyu.contacts.models import Consent, Contact, Identity
    from siyu.core.audit import Actor
    from siyu.segments.actions import segment_create
    from siyu.segments.models import Segment, SegmentKind, SegmentMember

    ws = workspace.pk
    pg = connection.vendor == "postgresql"
    seconds: dict[str, float] = {}
    if pg:
        run("SET max_parallel_workers_per_gather = 0")

    def step(name: str, sql: str) -> None:
        started = time.perf_counter()
        with transaction.atomic():
            rows = run(sql)
        seconds[name] = round(time.perf_counter() - started, 1)
        log(f"  {name}: {rows:,} rows in {seconds[name]:.1f} s")

    at = ts(SEEDED_AT)
    step(
        "contacts",
        f"INSERT INTO {Contact._meta.db_table} (workspace_id, name, gender, province, city,"
        " source, attributes, first_seen_at, last_seen_at, created_at, updated_at) "
        f"SELECT {ws}, '会员' || i, {pick(['female', 'female', 'male', 'unknown'], 'i', 2)}, "
        f"'', {pick(CITIES, 'i', 5)}, 'import', '{{}}', {at}, {at}, {at}, {at} "
        f"FROM {series(contacts)}",
    )
    base = contact_base(ws, contacts)

    # phones: real Fernet tokens and keyed hashes, made here as build_identity makes them
    from siyu.contacts.actions.identity import identity_hash
    from siyu.contacts.normalize import mask
    from siyu.core import crypto

    started = time.perf_counter()
    fernet = crypto.fernet()
    stamp = connection.ops.adapt_datetimefield_value(SEEDED_AT)

    def phones():
        for i in range(1, contacts + 1):
            if draw(i, PHONE) < SHARE["phone"]:
                phone = phone_of(i)
                yield (
                    ws,
                    base + i,
                    "phone",
                    "",
                    "",
                    fernet.encrypt(phone.encode()).decode(),
                    identity_hash("phone", phone),
                    mask("phone", phone),
                    stamp,
                )

    columns = "workspace_id, contact_id, kind, app_id, value, value_enc, value_hash, masked"
    columns += ", created_at"
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:  # streamed: encrypted while COPY sends
            with cursor.connection.cursor().copy(
                f"COPY {Identity._meta.db_table} ({columns}) FROM STDIN"
            ) as copy:
                for row in phones():
                    copy.write_row(row)
                    written += 1
        else:
            marks = ", ".join(["%s"] * 9)
            sql = f"INSERT INTO {Identity._meta.db_table} ({columns}) VALUES ({marks})"
            chunk = []
            for row in phones():
                chunk.append(row)
                if len(chunk) == 20_000:
                    cursor.executemany(sql, chunk)
                    written, chunk = written + len(chunk), []
            if chunk:
                cursor.executemany(sql, chunk)
            written += len(chunk)
    seconds["phones"] = round(time.perf_counter() - started, 1)
    log(
        f"  phones: {written:,} rows in {seconds['phones']:.1f} s (encrypted, hashed and "
        f"masked in Python)"
    )

    consent = u("i", CONSENT)
    granted, withdrawn = SHARE["granted"], SHARE["granted"] + SHARE["withdrawn"]
    step(
        "consent",
        f"INSERT INTO {Consent._meta.db_table} (workspace_id, contact_id, channel, status,"
        " source, recorded_at) "
        f"SELECT {ws}, {base} + i, 'sms', "
        f"CASE WHEN {consent} < {granted} THEN 'granted' ELSE 'withdrawn' END, 'bench', {at} "
        f"FROM {series(contacts)} WHERE {consent} < {withdrawn}",
    )

    actor = Actor.system("bench")
    made = {}
    for name, condition in (
        (ALL_MEMBERS, "1 = 1"),
        (COMPLAINTS, f"{u('i', COMPLAINT)} < {SHARE['complaint']}"),
    ):
        segment = segment_create(
            workspace=workspace, actor=actor, name=name, kind=SegmentKind.STATIC, refresh=False
        )
        step(
            f"segment {name}",
            f"INSERT INTO {SegmentMember._meta.db_table} (workspace_id, segment_id, contact_id,"
            f" entered_at) SELECT {ws}, {segment.pk}, {base} + i, {at} "
            f"FROM {series(contacts)} WHERE {condition}",
        )
        size = SegmentMember.objects.filter(segment=segment).count()
        Segment.objects.filter(pk=segment.pk).update(size=size)
        made[name] = size
    started = time.perf_counter()
    analyze()
    seconds["analyze"] = round(time.perf_counter() - started, 1)
    return seconds


def analyze(tables: list[str] | None = None) -> None:
    """Statistics (and on PostgreSQL the visibility map) as autovacuum would leave them:
    it is off in the bench cluster."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in tables or [""]:
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("PRAGMA analysis_limit = 1000")
            cursor.execute("ANALYZE")


def history(workspace_id: int, contacts: int, channel, template, now) -> int:
    """SMS already sent to 10% of the contacts, 1 to 23 hours before `now` (on this
    channel, so the sms/day cap counts them). How many rows."""
    from siyu.messaging.models import OutboxMessage

    base = contact_base(workspace_id, contacts)
    sent = ts(now, f"3600 + {u('i', HOURS)} * 22 * 3600")
    with transaction.atomic():
        rows = run(
            f"INSERT INTO {OutboxMessage._meta.db_table} (workspace_id, key, contact_id,"
            " channel_id, template_id, source, status, reason, detail, address_masked, attempts,"
            " due_at, vendor_id, vendor_ref, created_at, sent_at, finished_at) "
            f"SELECT {workspace_id}, 'history:' || i || ':{channel.kind}', {base} + i, "
            f"{channel.pk}, {template.pk}, 'history', 'sent', '', '', '', 1, {sent}, '', '', "
            f"{sent}, {sent}, NULL FROM {series(contacts)} "
            f"WHERE {u('i', HISTORY)} < {SHARE['history']}"
        )
    return rows


def expected_funnel(contacts: int, base: int, holdout_seed: str, threshold: int) -> dict:
    """The funnel the planner must find, from the draws alone (no database)."""
    from siyu.segments.compiler import sample_bucket

    counts = {"audience": 0, "holdout": 0, "suppressed": {}, "to_send": 0}
    suppressed = counts["suppressed"]
    for i in range(1, contacts + 1):
        if draw(i, COMPLAINT) < SHARE["complaint"]:
            continue
        counts["audience"] += 1
        reason = ""
        if sample_bucket(base + i, holdout_seed) < threshold:
            counts["holdout"] += 1
            continue
        if not draw(i, CONSENT) < SHARE["granted"]:
            reason = "no_consent"
        elif not draw(i, PHONE) < SHARE["phone"]:
            reason = "no_address"
        elif draw(i, HISTORY) < SHARE["history"]:
            reason = "frequency_cap:sms/day"
        if reason:
            suppressed[reason] = suppressed.get(reason, 0) + 1
        else:
            counts["to_send"] += 1
    return counts

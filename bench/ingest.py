"""Ingest benchmark: the Segment-compatible collection API under load, then the resolver.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench_ingest \\
        .venv/bin/python bench/ingest.py [--events 200000] [--clients 4] [--batch 100]

1. **Accept.** Starts `siyu serve` (gunicorn) on a free port and drives `POST /v1/batch`
   (100 messages a request, write key in HTTP Basic, as the Segment libraries send it) from
   several concurrent keep-alive clients. No task worker runs meanwhile, so the accept rate
   is the API alone: validate, deduplicate, persist. Accepted events/s = events / wall time.
2. **Process.** Stops the server and drains the workspace's pending events with the same
   function the `process_pending` task runs (identity resolution, contacts created and
   merged, orders, aggregates). Processed events/s = events / wall time.
3. **Raw insert baseline.** The same rows, as stored, inserted into a copy of the event
   table with the same indexes: COPY on PostgreSQL, one executemany in one transaction on
   SQLite. The processed rate is reported as a ratio of this (the target's yardstick). The
   same again with each event's row in a copy of the resolution queue, which the collection
   API writes with it, is reported too (`raw_insert_with_queue_per_s`). Each is run
   RAW_RUNS times, a checkpoint before each, and the median taken (all runs are printed):
   on one machine a single COPY of the same 200,000 rows ran anywhere from 41,000 to
   86,000 rows/s within an hour.

The message stream is fixed by --seed: members with one or two devices (the anonymousId
always sent, the userId when logged in, as analytics.js does) and as many visitors who never
log in; 60% track (with a campaign context), 15% page, 10% screen, and for members 12%
identify (traits: name, phone, city, a custom attribute; now and then a phone two members
share), 2% Order Completed, 1% alias. Each run
uses a fresh workspace (the previous run's bench workspace is deleted first). Without
SIYU_DATABASE_URL it runs on SQLite in SIYU_HOME (default var/bench-ingest). The last line
printed is one JSON object."""

import argparse
import base64
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from contacts import delete_workspace, ensure_database  # noqa: E402

SLUG = "bench-ingest"
TARGET_PER_S = 20_000
TARGET_RATIO = 0.25
RAW_RUNS = 3
EVENTS = ["Product Viewed", "Product Added", "Coupon Claimed", "Video Played", "Signed Up"]
CITIES = ["上海", "北京", "杭州", "成都", "深圳", "广州"]
NAMES = ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄婷"]


def messages(count: int, seed: int, users: int) -> list[dict]:
    """Members (with one or two devices, sometimes logged in, as analytics.js sends: the
    anonymousId always, the userId once known) and as many visitors who never log in."""
    rng = random.Random(seed)
    devices = {u: 2 if rng.random() < 0.3 else 1 for u in range(users)}
    out = []
    base = 1_790_000_000  # 2026-09-21, seconds
    for n in range(count):
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + rng.randrange(86400 * 30)))
        person = rng.randrange(users * 2)
        if person >= users:
            who = {"anonymousId": f"visitor-{person}"}
            user = None
        else:
            user = person
            device = f"device-{person}-{rng.randrange(devices[person])}"
            who = {"anonymousId": device}
            if rng.random() < 0.6:
                who["userId"] = f"user-{person}"
        common = {
            "messageId": f"{seed}-{n}",
            "timestamp": when + "Z",
            "context": {
                "library": {"name": "analytics-python", "version": "2.3.3"},
                "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                "campaign": {"source": rng.choice(["wecom", "douyin", "store_qr", "sms"])},
            },
        }
        roll = rng.random()
        if roll < 0.60 or (user is None and roll >= 0.85):
            props = {"product_id": f"sku-{rng.randrange(500)}", "price": rng.randrange(10, 300)}
            event = rng.choice(EVENTS)
            out.append({"type": "track", "event": event, "properties": props} | who | common)
        elif roll < 0.75:
            props = {"path": "/p"}
            out.append({"type": "page", "name": "商品详情", "properties": props} | who | common)
        elif roll < 0.85:
            out.append({"type": "screen", "name": "首页"} | who | common)
        elif roll < 0.97:
            traits = {"name": NAMES[user % len(NAMES)], "vip_level": rng.randrange(1, 5)}
            if rng.random() < 0.5:
                # one phone per member; now and then a phone another member uses too
                owner = rng.randrange(users) if rng.random() < 0.02 else user
                traits["phone"] = f"139{owner:08d}"
            if rng.random() < 0.3:
                traits["address"] = {"city": rng.choice(CITIES)}
            ids = {"userId": f"user-{user}", "anonymousId": who["anonymousId"]}
            out.append({"type": "identify", "traits": traits} | ids | common)
        elif roll < 0.99:
            props = {"order_id": f"bench-{seed}-{n}", "total": f"{rng.randrange(20, 900)}.00"}
            ids = {"userId": f"user-{user}", "anonymousId": who["anonymousId"]}
            out.append(
                {"type": "track", "event": "Order Completed", "properties": props} | ids | common
            )
        else:
            ids = {"userId": f"user-{user}", "previousId": who["anonymousId"]}
            out.append({"type": "alias"} | ids | common)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def drive(port: int, key: str, bodies: list[bytes], clients: int) -> float:
    """POST every body to /v1/batch from `clients` keep-alive connections; the wall time."""
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    lock, cursor, failures = threading.Lock(), [0], []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                index = cursor[0]
                cursor[0] += 1
            if index >= len(bodies):
                break
            conn.request("POST", "/v1/batch", body=bodies[index], headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or b'"rejected"' in payload:
                failures.append((response.status, payload[:200]))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return elapsed


def delete_previous(slug: str) -> None:
    """Remove an earlier run's bench workspace."""
    from django.db import connection

    from siyu.core.models import Workspace

    ws = Workspace.objects.filter(slug=slug).first()
    if ws is not None:
        delete_workspace(ws)
        if connection.vendor == "postgresql":
            # what autovacuum would have done by the next run (it may be off on a test
            # machine): the deleted rows' space reused, so runs do not slow each other down
            with connection.cursor() as cursor:
                cursor.execute("VACUUM")


def _clone(cursor, table: str, clone: str) -> None:
    """An empty copy of `table` with the same indexes."""
    from django.db import connection

    cursor.execute(f"DROP TABLE IF EXISTS {clone}")
    if connection.vendor == "postgresql":
        cursor.execute(f"CREATE TABLE {clone} (LIKE {table} INCLUDING ALL)")
        return
    cursor.execute("SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL", [table])
    for (sql,) in cursor.fetchall():
        cursor.execute(
            sql.replace(f'"{table}"', f'"{clone}"').replace('INDEX "', f'INDEX "{clone}_')
        )


def _queue_rows(workspace_id: int) -> list[tuple]:
    """The queue rows of the workspace's events as the collection API writes them (with their
    routing fields, tracking/routing.py)."""
    from django.db import connection

    from siyu.tracking import routing
    from siyu.tracking.models import Event

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.workspace_id, e.id, '', {routing.select_sql('e')} "
            f"FROM {Event._meta.db_table} e WHERE e.workspace_id = %s ORDER BY e.id",
            [workspace_id],
        )
        return cursor.fetchall()


def raw_insert_rates(workspace_id: int, queued: bool = False, runs: int = RAW_RUNS) -> list:
    """Rows/s of the events as stored, inserted again into a copy of the table (same
    indexes), `runs` times (a checkpoint before each, the copy dropped after); with `queued`,
    each with its row in a copy of the resolution queue too, as the collection API stores
    them."""
    from django.db import connection, transaction

    from siyu.tracking import routing
    from siyu.tracking.models import Event, QueuedEvent

    fields = [f for f in Event._meta.concrete_fields if f.column != "id"]
    columns = [f.column for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {', '.join(columns)} FROM {Event._meta.db_table} WHERE workspace_id = %s",
            [workspace_id],
        )
        rows = cursor.fetchall()
    queue = _queue_rows(workspace_id)
    queue_columns = "workspace_id, event_id, error, " + ", ".join(routing.COLUMNS)
    rows = [row[1:] for row in rows]
    json_columns = {f.column for f in fields if f.get_internal_type() == "JSONField"}
    if connection.vendor == "postgresql":
        index = [columns.index(c) for c in json_columns]
        rows = [
            tuple(json.dumps(v) if i in index else v for i, v in enumerate(row)) for row in rows
        ]
    rates = []
    for _ in range(runs):
        checkpoint()
        with connection.cursor() as cursor:
            _clone(cursor, Event._meta.db_table, "bench_raw_event")
            _clone(cursor, QueuedEvent._meta.db_table, "bench_raw_queue")
        if connection.vendor == "postgresql":
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                pg = cursor.connection.cursor()
                with pg.copy(f"COPY bench_raw_event ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                if queued:
                    with pg.copy(f"COPY bench_raw_queue ({queue_columns}) FROM STDIN") as copy:
                        for row in queue:
                            copy.write_row(row)
            elapsed = time.perf_counter() - started
        else:
            marks = ", ".join(["%s"] * len(columns))
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO bench_raw_event ({', '.join(columns)}) VALUES ({marks})", rows
                )
                if queued:
                    marks = ", ".join(["%s"] * len(queue[0]))
                    cursor.executemany(
                        f"INSERT INTO bench_raw_queue ({queue_columns}) VALUES ({marks})", queue
                    )
            elapsed = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_raw_event")
            cursor.execute("DROP TABLE bench_raw_queue")
        rates.append(len(rows) / elapsed)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--users", type=int, default=None, help="default: events / 20")
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the process phase")
    parser.add_argument(
        "--process-batch",
        type=int,
        default=None,
        help="events per resolver batch (default: the product's)",
    )
    args = parser.parse_args()

    url = os.environ.get("SIYU_DATABASE_URL", "")
    os.environ.setdefault("SIYU_HOME", str(REPO / "var" / "bench-ingest"))
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    events = args.events or (200_000 if connection.vendor == "postgresql" else 50_000)
    users = args.users or max(100, events // 20)

    from siyu.accounts.actions import workspace_create
    from siyu.contacts.models import AttributeDefinition, Contact
    from siyu.core.audit import Actor
    from siyu.tracking.actions import writekey_create
    from siyu.tracking.models import Event, Order, QueuedEvent, ResolvedEvent
    from siyu.tracking.resolve import process_pending_events

    actor = Actor.system("bench")
    delete_previous(SLUG)
    ws = workspace_create(name="压测品牌", slug=SLUG, actor=actor)
    AttributeDefinition.objects.create(
        workspace=ws, key="vip_level", label="会员等级", type="number"
    )
    _, key = writekey_create(workspace=ws, actor=actor, name="bench")
    stream = messages(events, args.seed, users)
    chunks = [stream[i : i + args.batch] for i in range(0, len(stream), args.batch)]
    bodies = [json.dumps({"batch": c}, ensure_ascii=False).encode() for c in chunks]
    warm = min(20, len(bodies) // 10)  # requests that warm the server up, not timed
    print(f"{connection.vendor}: {events:,} events from {users:,} users, {len(bodies):,} requests")

    port = free_port()
    connection.close()  # the server's processes open their own
    server = start_server(port, args.server_workers)
    try:
        drive(port, key, bodies[:warm], args.clients)
        accept_s = drive(port, key, bodies[warm:], args.clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    accepted_events = sum(len(c) for c in chunks[warm:])
    stored = Event.objects.filter(workspace=ws).count()
    assert stored == events, f"{stored} events stored of {events}"
    accepted_per_s = accepted_events / accept_s
    print(f"accept: {accepted_events:,} events in {accept_s:.1f} s = {accepted_per_s:,.0f}/s")

    _delete_queued_tasks()
    checkpoint()  # the accept phase's WAL flushed now, not in the middle of processing
    if connection.vendor == "postgresql" and os.environ.get("BENCH_ANALYZE"):
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    if os.environ.get("BENCH_SQL"):
        _time_statements()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    batching = {"batch_size": args.process_batch} if args.process_batch else {}
    started, cpu_started = time.perf_counter(), time.process_time()
    processed = process_pending_events(ws.pk, **batching)
    process_s = time.perf_counter() - started
    # this process's own CPU time: the rest of the wall time is mostly the database's
    python_cpu_s = time.process_time() - cpu_started
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(
            40
        )
    pending = QueuedEvent.objects.filter(workspace=ws).count()
    assert processed == events and pending == 0, (processed, pending)
    processed_per_s = processed / process_s
    print(
        f"process: {processed:,} events in {process_s:.1f} s = {processed_per_s:,.0f}/s"
        f" (Python CPU {python_cpu_s:.1f} s)"
    )

    raw_runs = raw_insert_rates(ws.pk)
    raw_per_s = statistics.median(raw_runs)
    ratio = processed_per_s / raw_per_s
    runs = ", ".join(f"{r:,.0f}" for r in raw_runs)
    print(f"raw insert of the same rows: {raw_per_s:,.0f}/s (median of {runs});")
    print(f"  processed/raw = {ratio:.2f}")
    stored_runs = raw_insert_rates(ws.pk, queued=True)
    stored_per_s = statistics.median(stored_runs)
    print(
        f"raw insert with their queue rows: {stored_per_s:,.0f}/s;"
        f" processed/that = {processed_per_s / stored_per_s:.2f}"
    )
    contacts = Contact.objects.filter(workspace=ws).count()
    orders = Order.objects.filter(workspace=ws).count()
    errors = ResolvedEvent.objects.filter(workspace=ws).exclude(note="").count()
    print(f"{contacts:,} contacts, {orders:,} orders, {errors:,} events with a note")
    result = {
        "database": connection.vendor,
        "events": events,
        "clients": args.clients,
        "batch_size": args.batch,
        "accepted_events_per_s": round(accepted_per_s),
        "processed_events_per_s": round(processed_per_s),
        "raw_insert_per_s": round(raw_per_s),
        "raw_insert_with_queue_per_s": round(stored_per_s),
        "raw_insert_runs_per_s": [round(r) for r in raw_runs],
        "processed_vs_raw": round(ratio, 3),
        "process_python_cpu_s": round(python_cpu_s, 1),
        "contacts": contacts,
        "orders": orders,
        "target_processed_per_s": TARGET_PER_S,
        "target_vs_raw": TARGET_RATIO,
        "met": processed_per_s >= TARGET_PER_S and ratio >= TARGET_RATIO,
    }
    print(json.dumps(result))


def _time_statements() -> None:
    """BENCH_SQL=1: print the database time per kind of statement at exit (PostgreSQL)."""
    import atexit
    import collections
    import re

    import psycopg

    spent = collections.Counter()
    count = collections.Counter()

    def wrap(cls):
        real = cls.execute

        def execute(self, query, params=None, **kwargs):
            key = re.sub(r"\s+", " ", str(query))[:90]
            started = time.perf_counter()
            try:
                return real(self, query, params, **kwargs)
            finally:
                spent[key] += time.perf_counter() - started
                count[key] += 1

        cls.execute = execute

    wrap(psycopg.Cursor)
    wrap(psycopg.ClientCursor)
    real_commit = psycopg.Connection.commit

    def commit(self):  # deferred foreign-key checks run here
        started = time.perf_counter()
        try:
            return real_commit(self)
        finally:
            spent["COMMIT"] += time.perf_counter() - started
            count["COMMIT"] += 1

    psycopg.Connection.commit = commit

    def report():
        for key, seconds in spent.most_common(25):
            print(f"{seconds:7.3f} s {count[key]:6d}x  {key}")

    atexit.register(report)


def checkpoint() -> None:
    """PostgreSQL: write out dirty buffers now, so that each timed phase starts alike and a
    checkpoint forced by an earlier phase's WAL does not land in the middle of it."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")


def _delete_queued_tasks() -> None:
    """The accept phase enqueued one process_pending task per request; the drain below does
    their work, so they are removed (a worker started later would find nothing to do)."""
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(task_path="siyu.tracking.tasks.process_pending").delete()


if __name__ == "__main__":
    main()

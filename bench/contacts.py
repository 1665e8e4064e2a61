"""Contacts benchmark: server time of the customer-pool reads on a large pool.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python bench/contacts.py [--contacts 1000000] [--requests 200] [--explain]

Creates the PostgreSQL database if missing, migrates, loads the demo brand and tops the pool
up to --contacts with the `siyu seed-demo` code path (fixed seed). Then it times requests
inside Django's request handling (test Client against the real URLs, a real API key, the
owner's console session): the first list page, search by phone, search by name prefix,
contact detail, a deep page by cursor and the console list. Baselines in the same run, as
ratios: OFFSET paging at the same depth against the keyset cursor, and `icontains` name
search against the prefix search. The last line printed is one JSON object.

Without SIYU_DATABASE_URL it runs on SQLite in SIYU_HOME (default var/bench) with a
default of 100,000 contacts. The encryption and hash keys live in SIYU_HOME: use the same
SIYU_HOME for every run against one database."""

import argparse
import gc
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0


def ensure_database(url: str) -> None:
    """CREATE DATABASE for a PostgreSQL URL whose database does not exist yet."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import dj_database_url
    import psycopg
    from psycopg import sql

    cfg = dj_database_url.parse(url)
    params = {
        "dbname": "postgres",
        "host": cfg.get("HOST") or None,
        "port": cfg.get("PORT") or None,
        "user": cfg.get("USER") or None,
        "password": cfg.get("PASSWORD") or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cfg["NAME"])))
            print(f"created database {cfg['NAME']}")


def delete_workspace(ws) -> None:
    """A bench workspace and everything in it: raw deletes, biggest tables first (the ORM
    would load millions of rows). Shared by the benchmarks that make their own workspace."""
    from django.apps import apps
    from django.db import connection, transaction

    order = [
        "segments.SegmentChange",
        "segments.SegmentMember",
        "segments.SegmentSize",
        "segments.Segment",
        "segments.ContactScore",
        "segments.StageFlow",
        "segments.ClvFit",
        "segments.RefreshSchedule",
        "segments.ScoringSettings",
        "tracking.DailyEventCount",
        "tracking.ContactStats",
        "tracking.OrderItem",
        "tracking.OrderRefund",
        "tracking.Order",
        "tracking.ResolvedEvent",
        "tracking.QueuedEvent",
        "tracking.Event",
        "tracking.Product",
        "tracking.IngestState",
        "tracking.WriteKey",
        "contacts.TimelineEntry",
        "contacts.ContactTag",
        "contacts.Tag",
        "contacts.TagGroup",
        "contacts.Consent",
        "contacts.Identity",
        "contacts.Contact",
        "contacts.AttributeDefinition",
        "core.AuditLog",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for label in order:
            table = apps.get_model(label)._meta.db_table
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [ws.pk])
        ws.delete()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(pct(values, 95), 2),
        "max": round(max(values), 2),
    }


def timed(call, inputs: list, warmup: int = 5, freeze: bool = False) -> list[float]:
    """Milliseconds per call, after a few untimed warm-up calls."""
    for value in inputs[:warmup]:
        call(value)
    if freeze:
        gc.freeze()
    out = []
    for value in inputs:
        started = time.perf_counter()
        call(value)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--baseline-requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE (PostgreSQL)")
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() after warm-up, as siyu.wsgi does once the app is loaded (default); "
        "--no-gc-freeze shows what full garbage collections add to the tail",
    )
    args = parser.parse_args()

    os.environ.setdefault("SIYU_HOME", str(REPO / "var" / "bench"))
    # the dashboard row measures computing the numbers, not the console's one-minute cache
    os.environ.setdefault("SIYU_DASHBOARD_CACHE_SECONDS", "0")
    Path(os.environ["SIYU_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_database(os.environ.get("SIYU_DATABASE_URL", ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    run(args)


def run(args) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max, Min, Prefetch
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import Resolver404, resolve

    from siyu.accounts import actions as account_actions
    from siyu.accounts.models import Staff
    from siyu.contacts.actions.identity import identity_clear_value
    from siyu.contacts.models import Contact, ContactTag, Identity
    from siyu.contacts.queries import ContactFilter, contact_page, visible_contacts
    from siyu.contacts.schemas import contact_out
    from siyu.core.audit import Actor
    from siyu.demo import data
    from siyu.demo.brand import demo_workspace, load_demo
    from siyu.demo.seed import seed_contacts

    vendor = connection.vendor
    target = args.contacts or (1_000_000 if vendor == "postgresql" else 100_000)
    rng = random.Random(args.seed)
    print(f"siyu contacts benchmark: {vendor}, target {target:,} contacts, seed {args.seed}")

    call_command("migrate", verbosity=0, interactive=False)
    workspace = demo_workspace() or load_demo(seed=args.seed).workspace
    have = Contact.objects.filter(workspace=workspace).count()
    seed_seconds = seed_rate = None
    if have < target:
        print(f"seeding {target - have:,} contacts (pool has {have:,}) ...")
        started = time.perf_counter()
        seed_contacts(
            workspace,
            target - have,
            seed=args.seed,
            progress=lambda p: print(
                f"  {p.done:>11,} / {p.total:,}  {p.contacts_per_second:7,.0f} contacts/s  "
                f"{p.rows_per_second:8,.0f} rows/s",
                flush=True,
            ),
        )
        seed_seconds = time.perf_counter() - started
        seed_rate = (target - have) / seed_seconds
        print(f"seeded in {seed_seconds:.0f}s ({seed_rate:,.0f} contacts/s)")
    if vendor == "postgresql":
        # The steady state autovacuum reaches after a bulk load: statistics and a visibility
        # map (index-only scans). Cheap when nothing changed since the last run.
        print("VACUUM ANALYZE ...", flush=True)
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                if table.startswith(("contacts_", "accounts_", "core_")):
                    cursor.execute(f'VACUUM ANALYZE "{table}"')
    contacts = Contact.objects.filter(workspace=workspace).count()
    print(f"pool: {contacts:,} contacts")

    system = Actor.system("bench")
    key, raw = account_actions.apikey_create(
        workspace=workspace, actor=system, name="bench", role="admin"
    )
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    owner = Staff.objects.get(email=data.OWNER_EMAIL)
    console = Client()
    console.force_login(owner)
    actor = Actor(user=owner, label=owner.email, role="owner")

    # Inputs chosen with a fixed seed: random existing contacts, their phones and names.
    n = args.requests
    bounds = Contact.objects.filter(workspace=workspace).aggregate(lo=Min("id"), hi=Max("id"))
    picks = rng.sample(range(bounds["lo"], bounds["hi"] + 1), min(n * 6, contacts))
    ids = list(
        Contact.objects.filter(workspace=workspace, pk__in=picks).values_list("pk", flat=True)
    )
    rng.shuffle(ids)
    ids = ids[: n * 3]
    phones = [
        identity_clear_value(i)[3:]  # typed as a national number: 13812345678
        for i in Identity.objects.filter(workspace=workspace, kind="phone", contact_id__in=ids)
    ][:n]
    names = [
        name[:2]  # surname + first given character, as people type it
        for name in Contact.objects.filter(pk__in=ids).values_list("name", flat=True)
        if len(name) >= 2 and all("\u4e00" <= ch <= "\u9fff" for ch in name)
    ][:n]
    detail_ids = ids[:n]
    ordered = Contact.objects.filter(workspace=workspace).order_by("-id")
    depths = sorted(rng.randrange(contacts // 10, contacts - 60) for _ in range(max(n // 4, 10)))
    cursors = [(d, ordered.values_list("pk", flat=True)[d - 1]) for d in depths]

    deep = [(d, cursor_for_row(ordered, pk)) for d, pk in cursors]

    def get_ok(client, path, params=None, expect=None):
        response = client.get(path, params or {})
        if response.status_code != 200:
            raise SystemExit(f"{path} {params}: HTTP {response.status_code} {response.content!r}")
        if expect is not None:
            expect(response)
        return response

    def phone_found(response):
        if len(response.json()["items"]) != 1:
            raise SystemExit(f"phone search found {len(response.json()['items'])} contacts")

    scenarios = {
        "list_first_page": (lambda _: get_ok(api, "/api/v1/contacts"), list(range(n))),
        "search_phone": (
            lambda p: get_ok(api, "/api/v1/contacts", {"q": p}, phone_found),
            phones,
        ),
        "search_name": (lambda q: get_ok(api, "/api/v1/contacts", {"q": q}), names),
        "contact_detail": (lambda i: get_ok(api, f"/api/v1/contacts/{i}"), detail_ids),
        "list_deep_page": (
            lambda dc: get_ok(api, "/api/v1/contacts", {"cursor": dc[1]}),
            deep,
        ),
    }
    console_path = f"/w/{workspace.slug}/contacts/"
    try:
        resolve(console_path)
        scenarios["console_list"] = (lambda _: get_ok(console, console_path), list(range(n)))
        scenarios["console_search_name"] = (
            lambda q: get_ok(console, console_path, {"q": q}),
            names,
        )
    except Resolver404:
        print(f"(no console page at {console_path} yet: skipped)")
    # Informational: the page the owner lands on (whole-pool aggregates), fewer requests.
    dashboard_path = f"/w/{workspace.slug}/"
    scenarios["console_dashboard"] = (
        lambda _: get_ok(console, dashboard_path),
        list(range(max(n // 10, 10))),
    )

    results: dict[str, dict] = {}
    queries: dict[str, int] = {}
    slowest_sql: dict[str, str] = {}
    print(f"\n{'server time, ms':<22}{'p50':>8}{'p95':>8}{'max':>8}{'n':>6}{'queries':>9}")
    for name, (call, inputs) in scenarios.items():
        with CaptureQueriesContext(connection) as ctx:
            call(inputs[0])
        queries[name] = len(ctx.captured_queries)
        slowest_sql[name] = max(ctx.captured_queries, key=lambda q: float(q["time"]))["sql"]
        results[name] = summary(timed(call, inputs, freeze=args.gc_freeze))
        r = results[name]
        print(
            f"{name:<22}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}"
            f"{len(inputs):>6}{queries[name]:>9}",
            flush=True,
        )

    # Baselines, at the query + serialisation level (the API has no OFFSET or icontains):
    # both sides below run the same prefetches and the same contact_out.
    def serialise(rows):
        return [contact_out(c) for c in rows]

    def offset_page(depth: int):
        qs = (
            visible_contacts(workspace, actor)
            .order_by("-id")
            .select_related("owner")
            .prefetch_related(
                Prefetch("identities", queryset=Identity.objects.order_by("id")),
                Prefetch("contact_tags", queryset=ContactTag.objects.select_related("tag")),
                "consents",
            )
        )
        return serialise(qs[depth : depth + 50])

    def keyset_page(cursor: str):
        qs = visible_contacts(workspace, actor).prefetch_related("consents")
        return serialise(contact_page(qs, cursor=cursor, limit=50)[0])

    def prefix_search(q: str):
        qs = ContactFilter(q=q).apply(workspace, visible_contacts(workspace, actor))
        return serialise(contact_page(qs.prefetch_related("consents"), limit=50)[0])

    def icontains_search(q: str):
        qs = visible_contacts(workspace, actor).filter(name__icontains=q)
        return serialise(contact_page(qs.prefetch_related("consents"), limit=50)[0])

    nb = args.baseline_requests
    base_deep = deep[:nb]
    base_names = names[:nb]
    for depth, cursor in base_deep[:3]:  # the two must return the same rows
        same = [c["id"] for c in offset_page(depth)] == [c["id"] for c in keyset_page(cursor)]
        if not same:
            raise SystemExit("keyset and OFFSET pages differ: the benchmark is wrong")
    freeze = args.gc_freeze
    baselines = {
        "keyset_deep_page": summary(timed(keyset_page, [c for _d, c in base_deep], 5, freeze)),
        "baseline_offset_deep_page": summary(
            timed(offset_page, [d for d, _c in base_deep], 5, freeze)
        ),
        "prefix_name_search": summary(timed(prefix_search, base_names, 5, freeze)),
        "baseline_icontains_name": summary(timed(icontains_search, base_names, 5, freeze)),
    }
    print(f"\n{'baselines, ms':<28}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, r in baselines.items():
        print(f"{name:<28}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}")
    offset_ratio = (
        baselines["baseline_offset_deep_page"]["p95"] / baselines["keyset_deep_page"]["p95"]
    )
    icontains_ratio = (
        baselines["baseline_icontains_name"]["p95"] / baselines["prefix_name_search"]["p95"]
    )
    print(
        f"OFFSET / keyset (p95): {offset_ratio:.1f}x   icontains / prefix: {icontains_ratio:.1f}x"
    )

    if args.explain and vendor == "postgresql":
        with connection.cursor() as cursor:
            for name, sql_text in slowest_sql.items():
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql_text)
                print(f"\n-- {name}: slowest query\n{sql_text}")
                print("\n".join(row[0] for row in cursor.fetchall()))

    account_actions.apikey_revoke(workspace=workspace, actor=system, key=key)
    targets = ("list_first_page", "search_phone", "search_name", "contact_detail")
    report = {
        "contacts": contacts,
        "database": vendor,
        "requests": n,
        "seed_seconds": round(seed_seconds, 1) if seed_seconds else None,
        "seed_contacts_per_s": round(seed_rate) if seed_rate else None,
        "gc_freeze": args.gc_freeze,
    }
    for name, r in results.items():
        for stat in ("p50", "p95", "max"):
            report[f"{name}_{stat}_ms"] = r[stat]
        report[f"{name}_queries"] = queries[name]
    for name, r in baselines.items():
        report[f"{name}_p95_ms"] = r["p95"]
    report["offset_vs_keyset_ratio"] = round(offset_ratio, 1)
    report["icontains_vs_prefix_ratio"] = round(icontains_ratio, 1)
    report["target_p95_ms"] = TARGET_MS
    report["targets_met"] = all(results[t]["p95"] < TARGET_MS for t in targets)
    print(json.dumps(report, ensure_ascii=False))


def cursor_for_row(ordered, pk: int) -> str:
    """The list cursor meaning "after the row with this id" in the newest-first order."""
    from siyu.contacts.queries import contact_page

    return contact_page(ordered.filter(pk__lte=pk), limit=1)[1] or ""


if __name__ == "__main__":
    sys.exit(main())

"""Segments benchmark: refresh times on a large synthetic pool, against per-contact Python.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench_segments \\
        .venv/bin/python bench/segments.py [--contacts 1000000] [--events 20000000] \\
        [--orders 3000000]

1. **Pool.** A workspace `bench-segments` filled by bench/segment_pool.py (deterministic,
   about 24 minutes on PostgreSQL for the default size; kept and reused by later runs
   with the same sizes, `--reseed` to rebuild it).
2. **Built-ins.** Stages, tiers and RFM for every contact (`scores_refresh`), then the
   built-in segments (one per stage, tier and RFM segment), twice: the first computation
   (`builtins_first_build_s`) and the recurring refresh the worker runs on schedule
   (`builtins_refresh_s`, the target).
3. **Ten representative segments** (fields, attributes, birthdays, identities, consent,
   tags, order windows, products bought, event counts from the rollup, an event-property
   filter over the raw events, scores, a segment of a segment, a holdout sample): each
   refreshed twice, first into an empty membership (every member and entry row written)
   and then as the recurring refresh (a diff). `max_segment_refresh_s` is the slowest
   recurring refresh, `max_first_build_s` the slowest first computation.
4. **Real time.** For 200 contacts (fixed seed), the ten segments re-evaluated for that
   contact alone (`refresh_contacts`): p95 per segment evaluation, and p95 of the whole
   after-events hook (stage and tier for the contact, then all ten segments).
5. **CLV.** `clv_fit_workspace`: the orders summarised in SQL, BG/NBD and Gamma-Gamma
   fitted, every buyer's P(alive) and expected value written.
6. **Baseline.** The same ten segments evaluated per contact in Python (evaluate.py over
   rows loaded in bulk — a generous baseline: no query per contact) on a sample of
   contacts, extrapolated to the pool; reported as a ratio of the SQL time.

Without SIYU_DATABASE_URL it runs on SQLite in SIYU_HOME (default var/bench-segments) with
a tenth of the sizes. The last line printed is one JSON object."""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from contacts import delete_workspace, ensure_database, pct  # noqa: E402

SLUG = "bench-segments"
TARGETS = {"segment_s": 2.0, "builtins_s": 60.0, "realtime_p95_ms": 20.0, "clv_s": 60.0}


def representative(tag_ids: list[int], first_id: int | None) -> list[tuple[str, dict]]:
    def f(field, op, value=None):
        return {"type": "field", "field": field, "op": op, "value": value}

    rules = [
        (
            "上海女性高等级会员",
            {
                "type": "and",
                "rules": [
                    f("city", "eq", "上海"),
                    f("gender", "eq", "female"),
                    {"type": "attribute", "key": "vip_level", "op": "gte", "value": 3},
                ],
            },
        ),
        (
            "7天内生日且可短信",
            {
                "type": "and",
                "rules": [
                    f("birthday", "anniversary_within_next_days", 7),
                    {"type": "identity", "op": "has", "value": "phone"},
                    {"type": "consent", "channel": "sms", "op": "is", "value": "granted"},
                ],
            },
        ),
        (
            "30天浏览3次以上",
            {
                "type": "event",
                "event": "Product Viewed",
                "op": "gte",
                "value": 3,
                "window": {"last_days": 30},
            },
        ),
        (
            "90天消费满1000元",
            {
                "type": "orders",
                "metric": "spend",
                "op": "gte",
                "value": 1000,
                "window": {"last_days": 90},
            },
        ),
        (
            "半年内买过彩妆",
            {
                "type": "bought",
                "by": "category",
                "op": "any",
                "value": ["彩妆"],
                "window": {"last_days": 180},
            },
        ),
        (
            "加购未下单",
            {
                "type": "and",
                "rules": [
                    {
                        "type": "event",
                        "event": "Product Added",
                        "op": "gte",
                        "value": 1,
                        "window": {"last_days": 7},
                    },
                    {
                        "type": "not",
                        "rule": {
                            "type": "orders",
                            "metric": "count",
                            "op": "gte",
                            "value": 1,
                            "window": {"last_days": 7},
                        },
                    },
                ],
            },
        ),
        (
            "浏览高价商品两次",
            {
                "type": "event",
                "event": "Product Viewed",
                "op": "gte",
                "value": 2,
                "window": {"last_days": 30},
                "where": [{"property": "price", "kind": "number", "op": "gte", "value": 400}],
            },
        ),
        (
            "标签人群去黑名单",
            {
                "type": "and",
                "rules": [
                    {"type": "tags", "op": "any", "value": tag_ids[1:4]},
                    {"type": "tags", "op": "none", "value": tag_ids[:1]},
                ],
            },
        ),
        (
            "高价值且仍活跃",
            {
                "type": "and",
                "rules": [
                    {
                        "type": "score",
                        "field": "rfm_segment",
                        "op": "in",
                        "value": ["champions", "loyal"],
                    },
                    {"type": "score", "field": "stage", "op": "neq", "value": "churned"},
                ],
            },
        ),
    ]
    if first_id is not None:
        rules.append(
            (
                "高消费人群10%对照组",
                {
                    "type": "and",
                    "rules": [
                        {"type": "segment", "op": "in", "value": first_id},
                        {"type": "sample", "value": 10, "seed": "holdout-2026"},
                    ],
                },
            )
        )
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--sample", type=int, default=5000, help="contacts for the baseline")
    parser.add_argument("--realtime", type=int, default=200, help="contacts timed in real time")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest")
    args = parser.parse_args()

    url = os.environ.get("SIYU_DATABASE_URL", "")
    os.environ.setdefault("SIYU_HOME", str(REPO / "var" / "bench-segments"))
    Path(os.environ["SIYU_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    pg = connection.vendor == "postgresql"
    contacts = args.contacts or (1_000_000 if pg else 100_000)
    events = args.events or 20 * contacts
    orders = args.orders or 3 * contacts
    print(f"{connection.vendor}: {contacts:,} contacts, {events:,} events, {orders:,} orders")
    ws = prepare(contacts, events, orders, args.reseed)
    result = measure(ws, args, contacts, events, orders)
    print(json.dumps(result, ensure_ascii=False))


def prepare(contacts: int, events: int, orders: int, reseed: bool):
    import segment_pool

    from siyu.accounts.actions import workspace_create
    from siyu.contacts.models import AttributeDefinition
    from siyu.core.audit import Actor
    from siyu.core.models import Workspace

    sizes = {"contacts": contacts, "events": events, "orders": orders}
    ws = Workspace.objects.filter(slug=SLUG).first()
    marker = Path(os.environ["SIYU_HOME"]) / "bench-segments.json"
    if ws is not None and not reseed and marker.exists():
        if json.loads(marker.read_text()) == {**sizes, "workspace": ws.pk}:
            print("reusing the seeded pool")
            return ws
    if ws is not None:
        delete_workspace(ws)
    ws = workspace_create(name="压测分群品牌", slug=SLUG, actor=Actor.system("bench"))
    AttributeDefinition.objects.create(
        workspace=ws, key="vip_level", label="会员等级", type="number"
    )
    started = time.perf_counter()
    print("seeding ...")
    segment_pool.seed(ws.pk, contacts, events, orders)
    print(f"seeded in {time.perf_counter() - started:.0f} s")
    marker.write_text(json.dumps({**sizes, "workspace": ws.pk}))
    return ws


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out


def measure(ws, args, contacts: int, events: int, orders: int) -> dict:
    from django.apps import apps
    from django.db import connection
    from segment_pool import NOW

    from siyu.contacts.models import Tag
    from siyu.core.audit import Actor
    from siyu.segments import actions
    from siyu.segments.membership import refresh_contacts, refresh_segment
    from siyu.segments.models import Segment, SegmentKind, SegmentMember
    from siyu.segments.realtime import on_contacts_processed
    from siyu.segments.scores import scores_refresh

    actor = Actor.system("bench")
    # a clean slate of segments each run (the pool itself is reused), their space given back
    # (autovacuum may be off: dead rows would slow every later run's writes)
    tables = [
        apps.get_model("segments", m)._meta.db_table
        for m in ("SegmentChange", "SegmentMember", "SegmentSize", "Segment")
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [ws.pk])
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"VACUUM {table}")

    # -- built-ins ---------------------------------------------------------------------------
    # first the initial computation (every member and entry row written), then the
    # recurring one the worker runs on schedule: scores again, then each built-in's diff
    builtins = actions.builtins_ensure(ws)
    builtin_runs = []
    for _ in ("first", "recurring"):
        scores_s, _scored = timed(lambda: scores_refresh(ws, now=NOW))
        times = [timed(lambda s=s: refresh_segment(s, now=NOW))[0] for s in builtins]
        builtin_runs.append((scores_s, sum(times), max(times)))
    (first_scores_s, first_segments_s, _), (scores_s, builtin_segments_s, slowest) = builtin_runs
    builtins_first_s = first_scores_s + first_segments_s
    builtins_s = scores_s + builtin_segments_s
    print(f"built-ins, first computation: scores {first_scores_s:.1f} s + {len(builtins)} "
          f"segments {first_segments_s:.1f} s = {builtins_first_s:.1f} s")  # fmt: skip
    print(f"built-ins, recurring: scores {scores_s:.1f} s + segments {builtin_segments_s:.1f} s "
          f"(slowest {slowest:.2f} s) = {builtins_s:.1f} s")  # fmt: skip

    # -- ten representative segments --------------------------------------------------------
    tag_ids = sorted(Tag.objects.filter(workspace=ws).values_list("pk", flat=True))
    made = []
    first = None
    for name, rule in representative(tag_ids, None):
        segment = actions.segment_create(
            workspace=ws, actor=actor, name=name, rule=rule, refresh=False
        )
        made.append(segment)
        if first is None:
            first = segment.pk
    name, rule = representative(tag_ids, first)[-1]
    made.append(
        actions.segment_create(workspace=ws, actor=actor, name=name, rule=rule, refresh=False)
    )
    rows = []
    for segment in made:
        cold, counts = timed(lambda s=segment: refresh_segment(s, now=NOW))
        warm, _ = timed(lambda s=segment: refresh_segment(s, now=NOW))
        rows.append({"name": segment.name, "size": counts["size"], "first_s": round(cold, 3),
                     "steady_s": round(warm, 3)})  # fmt: skip
        print(f"  {segment.name}: {counts['size']:,} members, first {cold:.2f} s, "
              f"steady {warm:.2f} s")  # fmt: skip
    # the target is the refresh that recurs (scheduled, on edit, on demand); a new segment's
    # very first computation also writes every member and entry row, reported apart
    max_segment_s = max(r["steady_s"] for r in rows)
    max_first_s = max(r["first_s"] for r in rows)
    sql_total_s = sum(r["steady_s"] for r in rows)

    if args.explain and connection.vendor == "postgresql":
        explain_slowest(ws, made, rows)

    # -- real time ---------------------------------------------------------------------------
    rng = random.Random(args.seed)
    ids = list(
        SegmentMember.objects.filter(workspace=ws).values_list("contact_id", flat=True)[:50_000]
    )
    from siyu.contacts.models import Contact

    first_id = Contact.objects.filter(workspace=ws).order_by("pk").values_list("pk", flat=True)[0]
    picks = rng.sample(ids, min(len(ids), args.realtime // 2)) + [
        first_id + rng.randrange(contacts) for _ in range(args.realtime - args.realtime // 2)
    ]
    per_segment, per_hook = [], []
    for cid in picks:
        for segment in made:
            seconds, _ = timed(lambda s=segment, c=cid: refresh_contacts(s, [c], now=NOW))
            per_segment.append(seconds * 1000)
    Segment.objects.filter(pk__in=[s.pk for s in made]).update(realtime=True)
    for cid in picks[:50]:
        seconds, _ = timed(lambda c=cid: on_contacts_processed(ws, [c]))
        per_hook.append(seconds * 1000)
    Segment.objects.filter(kind=SegmentKind.BUILTIN, workspace=ws).update(realtime=False)
    realtime_p95 = pct(per_segment, 95)
    hook_p95 = pct(per_hook, 95)
    print(f"real time: p50 {pct(per_segment, 50):.1f} ms, p95 {realtime_p95:.1f} ms per segment "
          f"and contact; whole hook (scores + {len(made)} segments + built-ins) p95 "
          f"{hook_p95:.0f} ms")  # fmt: skip

    # -- CLV ---------------------------------------------------------------------------------
    clv_s, fit = timed(lambda: clv_fit(ws, actor))
    print(f"CLV fit: {clv_s:.1f} s, {fit}")

    # -- baseline: the same ten segments in Python, per contact -----------------------------
    base_s, per_contact_ms = python_baseline(ws, made, args.sample, rng)
    extrapolated = per_contact_ms / 1000 * contacts
    print(f"python per contact: {per_contact_ms:.2f} ms for the ten segments; "
          f"{extrapolated:,.0f} s extrapolated to {contacts:,} contacts "
          f"vs {sql_total_s:.1f} s in SQL")  # fmt: skip

    return {
        "database": connection.vendor,
        "contacts": contacts,
        "events": events,
        "orders": orders,
        "max_segment_refresh_s": round(max_segment_s, 3),
        "max_first_build_s": round(max_first_s, 3),
        "segments": rows,
        "builtins_refresh_s": round(builtins_s, 2),
        "builtins_first_build_s": round(builtins_first_s, 2),
        "scores_refresh_s": round(scores_s, 2),
        "builtin_segments_s": round(builtin_segments_s, 2),
        "realtime_eval_p50_ms": round(pct(per_segment, 50), 2),
        "realtime_eval_p95_ms": round(realtime_p95, 2),
        "realtime_hook_p95_ms": round(hook_p95, 1),
        "clv_fit_s": round(clv_s, 2),
        "clv": fit,
        "python_per_contact_ms": round(per_contact_ms, 3),
        "python_sample_contacts": args.sample,
        "python_extrapolated_s": round(extrapolated, 1),
        "sql_ten_segments_s": round(sql_total_s, 2),
        "python_vs_sql": round(extrapolated / sql_total_s, 1) if sql_total_s else None,
        "targets": TARGETS,
        "met": max_segment_s < TARGETS["segment_s"]
        and builtins_s < TARGETS["builtins_s"]
        and realtime_p95 < TARGETS["realtime_p95_ms"]
        and clv_s < TARGETS["clv_s"],
    }


def clv_fit(ws, actor) -> dict:
    from siyu.segments.clv_actions import clv_fit_workspace

    fit = clv_fit_workspace(ws, actor=actor)
    if fit.error:
        return {"error": fit.error}
    return {"customers": fit.customers, **{k: fit.params.get(k) for k in ("bgnbd", "gamma_gamma")}}


def python_baseline(ws, segments, sample: int, rng) -> tuple[float, float]:
    """Per-contact Python evaluation of the segments over `sample` contacts (rows loaded in
    chunks with a few queries each): (seconds, ms per contact)."""
    from zoneinfo import ZoneInfo

    from segment_pool import NOW

    from siyu.contacts.models import AttributeDefinition, Contact
    from siyu.segments.compiler import Clock
    from siyu.segments.evaluate import load_records, matches
    from siyu.segments.rules import ATTRIBUTE_TYPES

    first = Contact.objects.filter(workspace=ws).order_by("pk").values_list("pk", flat=True)[0]
    total = Contact.objects.filter(workspace=ws).count()
    ids = sorted({first + rng.randrange(total) for _ in range(sample)})
    types = {
        d.key: ATTRIBUTE_TYPES[d.type] for d in AttributeDefinition.objects.filter(workspace=ws)
    }
    clock = Clock(now=NOW, tz=ZoneInfo(ws.timezone))
    started = time.perf_counter()
    hits = 0
    for start in range(0, len(ids), 500):
        for record in load_records(ws.pk, ids[start : start + 500]):
            for segment in segments:
                hits += matches(segment.rule, record, clock, types)
    seconds = time.perf_counter() - started
    return seconds, seconds * 1000 / len(ids)


def explain_slowest(ws, segments, rows) -> None:
    from django.db import connection
    from segment_pool import NOW

    from siyu.segments.compiler import segment_queryset

    slowest = max(range(len(rows)), key=lambda i: rows[i]["first_s"])
    qs = segment_queryset(ws, segments[slowest].rule, NOW).values("id")
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("\n".join(r[0] for r in cursor.fetchall()))


if __name__ == "__main__":
    main()

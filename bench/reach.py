"""Reach benchmark: plan a broadcast to a large pool through the guardrails into the outbox,
send through a local fake vendor, against the same plan made per contact in Python.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench_reach \\
        .venv/bin/python bench/reach.py [--contacts 1000000] [--sample 10000] [--send 20000]

1. **Pool.** A workspace `bench-reach` filled by bench/reach_pool.py (deterministic hash
   draws, no random generator): N contacts, a phone for 90% (real Fernet tokens: the sender
   decrypts them), SMS consent granted for 80% and withdrawn for 5%, the static segments
   全部会员 (everyone) and 近期投诉 (2%). Deleted and seeded again each run; `--reuse` keeps
   a pool of the same size seeded earlier with the same SIYU_HOME (its keys).
2. **Setup of the run** (untimed): an `sms_aliyun` channel pointed at the fake, a template,
   a reach policy (sms at most 1 a day; quiet hours some hours away from now), an outbox
   history of SMS sent 1–23 hours ago to 10% of the contacts, and a broadcast to 全部会员
   without 近期投诉, holdout 10%.
3. **Plan.** `planner.preview()` (`preview_s`), then `actions.broadcast_send()`, which
   plans run 1 in SQL: the frozen audience (AudienceMember rows) and the outbox (`plan_s`,
   the target: < 60 s). Checked: the funnel equals the preview and the funnel the seed's
   draws predict, holdout ≈ 10%, queued rows = to_send. Planning the same run again (its
   audience rows deleted, inside a transaction rolled back afterwards) must add no outbox
   row (`replan_s`). A small broadcast planned at a moment inside quiet hours (rolled back)
   shows its messages due when they end.
4. **Baseline.** The same plan per contact in Python, as a naive implementation would do
   it with the ORM (segment membership, consent, phone, recent sends, the holdout bucket
   with `sample_bucket`, then AudienceMember and OutboxMessage rows created one by one, in
   one transaction rolled back afterwards) on a sample of contacts, extrapolated to the
   pool, as a ratio of `plan_s`; its decisions must equal the SQL plan's.
5. **Send.** A fake Aliyun SMS endpoint (tests/messaging/fakes/aliyun_sms.py, which checks
   signatures, timestamps and nonces) runs in a separate process. The first `--send` due
   messages of the broadcast stay due (the rest are moved a century ahead, untimed), and
   `sender.send_channel()` drains them (`send_msgs_per_s`, target ≥ 1,000/s): guardrails
   again, addresses decrypted, templates rendered, one signed SendSms call each, outcomes
   recorded. Then, for `--whole-queue-seconds`, the sender again with every queued message
   due, as right after a real broadcast (`send_msgs_per_s_whole_queue`). The fake's OutIds
   must be exactly the keys recorded sent, each once. Printed with it: where the time goes
   (the sender's phases, CPU seconds of each process) and the ceiling of the vendor calls
   alone (the transport from the sender's threads, no outbox). `--vendor-delay-ms` gives
   the fake a network latency; `--profile` runs cProfile over the sender.
6. **Journey.** Not built yet: `bench_journey()` is a stub, reported as null.

Without SIYU_DATABASE_URL it runs on SQLite in SIYU_HOME (default var/bench-reach-sqlite)
with 100,000 contacts. The last line printed is one JSON object."""

import argparse
import cProfile
import datetime
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.append(str(REPO))  # tests.messaging.fakes: the fake vendor and its keys
from contacts import delete_workspace, ensure_database  # noqa: E402

SLUG = "bench-reach"
TARGETS = {"plan_s": 60.0, "journey_steps_per_s": 10_000, "send_msgs_per_s": 1_000}
HOLDOUT = 10
FAR = datetime.datetime(2126, 1, 1, tzinfo=datetime.UTC)

# the fake vendor, in its own process: prints its URL, serves until stdin closes, then prints
# what it received
FAKE = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from tests.messaging.fakes.aliyun_sms import AliyunSmsFake
fake = AliyunSmsFake()
fake.delay = float(sys.argv[2])  # seconds before each answer: a vendor's latency
# headers and body leave in two writes: without TCP_NODELAY the body waits for the client's
# delayed ACK (40 ms a call on Linux), a test server's artefact no real endpoint has
fake.server.RequestHandlerClass.disable_nagle_algorithm = True
with fake:
    print(fake.url, flush=True)
    prefix = sys.stdin.readline().strip()  # the OutIds to account for; then stdin closes
    sys.stdin.read()
    # the sender's messages: alone (OutId = the key, which starts with the run's source) or
    # in a SendBatchSms (OutId = the batch's reference); each contact has its own phone
    phones = sorted(
        s.phone for s in fake.sent if s.out_id.startswith(prefix) or s.out_id.startswith("batch:")
    )
    print(json.dumps({
        "requests": len(fake.requests),
        "accepted": len(phones),
        "distinct_phones": len(set(phones)),
        "phones_sha256": hashlib.sha256("\n".join(phones).encode()).hexdigest(),
    }), flush=True)
"""


def start_fake(delay_ms: float = 0.0) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE, str(REPO), str(delay_ms / 1000)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"the fake vendor did not start: {url!r}")
    return proc, url


def stop_fake(proc: subprocess.Popen, prefix: str) -> dict:
    """What the fake accepted with OutIds starting with `prefix`; the fake exits."""
    proc.stdin.write(prefix + "\n")
    proc.stdin.close()
    line = proc.stdout.readline()
    proc.wait(timeout=30)
    return json.loads(line) if line.strip() else {}


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process on this machine (Linux /proc), or None."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=None, help="default 1,000,000 / 100,000")
    parser.add_argument("--sample", type=int, default=10_000, help="contacts for the baseline")
    parser.add_argument("--send", type=int, default=20_000, help="messages sent to the fake")
    parser.add_argument("--send-seconds", type=float, default=600, help="send_channel's limit")
    parser.add_argument(
        "--vendor-delay-ms", type=float, default=0.0, help="the fake's latency per call"
    )
    parser.add_argument(
        "--whole-queue-seconds",
        type=float,
        default=30,
        help="then send this long with the whole queue due (0: skip)",
    )
    parser.add_argument(
        "--ceiling-calls", type=int, default=2000, help="vendor calls timed without the outbox"
    )
    parser.add_argument("--seed", type=int, default=2026, help="the baseline's sample")
    parser.add_argument("--reuse", action="store_true", help="keep a seeded pool of this size")
    parser.add_argument("--profile", action="store_true", help="cProfile the sender")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE (PostgreSQL)")
    args = parser.parse_args()

    url = os.environ.get("SIYU_DATABASE_URL", "")
    default_home = "bench-reach" if url else "bench-reach-sqlite"
    os.environ.setdefault("SIYU_HOME", str(REPO / "var" / default_home))
    Path(os.environ["SIYU_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_database(url)
    fake, fake_url = start_fake(args.vendor_delay_ms)
    os.environ["SIYU_ALIYUN_SMS_URL"] = fake_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    pg = connection.vendor == "postgresql"
    contacts = args.contacts or (1_000_000 if pg else 100_000)
    print(f"siyu reach benchmark: {connection.vendor}, {contacts:,} contacts, fake SMS {fake_url}")
    try:
        ws = prepare(contacts, args.reuse)
        result = measure(ws, contacts, args, fake)
    finally:
        if fake.poll() is None:
            fake.kill()
    print(json.dumps(result, ensure_ascii=False))


# --- the pool ----------------------------------------------------------------------------------


def delete_reach(ws) -> None:
    """The broadcasts, outbox and channels of the bench workspace (what each run makes)."""
    from django.db import connection, transaction

    from siyu.campaigns.models import AudienceMember, Broadcast, BroadcastRun
    from siyu.messaging.models import (
        AccessToken,
        ChannelConfig,
        MessageTemplate,
        OutboxMessage,
        ReachPolicy,
    )

    models = [AudienceMember, BroadcastRun, Broadcast, OutboxMessage, AccessToken]
    models += [MessageTemplate, ChannelConfig, ReachPolicy]
    with transaction.atomic(), connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE workspace_id = %s", [ws.pk])


def prepare(contacts: int, reuse: bool):
    import reach_pool

    from siyu.accounts.actions import workspace_create
    from siyu.core.audit import Actor
    from siyu.core.models import Workspace

    ws = Workspace.objects.filter(slug=SLUG).first()
    marker = Path(os.environ["SIYU_HOME"]) / "bench-reach.json"
    wanted = {"contacts": contacts, "workspace": ws.pk if ws else None, "version": 1}
    if ws is not None and reuse and marker.exists() and json.loads(marker.read_text()) == wanted:
        print("reusing the seeded pool (--reuse)")
        delete_reach(ws)
        return ws
    if ws is not None:
        print("deleting the previous pool ...", flush=True)
        delete_reach(ws)
        delete_workspace(ws)
    ws = workspace_create(name="压测触达品牌", slug=SLUG, actor=Actor.system("bench"))
    print("seeding ...", flush=True)
    started = time.perf_counter()
    reach_pool.seed(ws, contacts)
    print(f"seeded in {time.perf_counter() - started:.0f} s")
    marker.write_text(json.dumps({**wanted, "workspace": ws.pk}))
    return ws


def setup_run(ws, contacts: int):
    """Channel, template, policy, history and the broadcast (a draft)."""
    from django.utils import timezone
    from reach_pool import ALL_MEMBERS, COMPLAINTS, analyze, history

    from siyu.campaigns.actions import broadcast_create
    from siyu.campaigns.models import AudienceMember, BroadcastRun
    from siyu.core.audit import Actor
    from siyu.messaging.actions import channel_create, policy_update, template_create
    from siyu.messaging.models import OutboxMessage
    from siyu.segments.models import Segment
    from tests.messaging.fakes.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET

    actor = Actor.system("bench")
    channel = channel_create(
        workspace=ws,
        actor=actor,
        kind="sms_aliyun",
        name="会员短信",
        settings={"sign_name": "山隅咖啡"},
        secrets={"access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET},
        rate_per_second=10_000,  # the highest the product accepts: the bench measures siyu
    )
    template = template_create(
        workspace=ws,
        actor=actor,
        kind="sms_aliyun",
        name="会员日",
        content={
            "template_code": "SMS_153055065",
            "text": "${name}您好，${city}门店会员日全场8折，回T退订",
            "params": {"name": "{{ contact.name }}", "city": "{{ contact.city }}"},
        },
    )
    # quiet hours two hours long, starting about six hours from now: the run is outside them
    now = timezone.now()
    local = now.astimezone(zoneinfo.ZoneInfo(ws.timezone))
    start = (local + datetime.timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    quiet = (start.time(), (start + datetime.timedelta(hours=2)).time())
    policy_update(
        workspace=ws,
        actor=actor,
        caps={"sms": {"day": 1}},
        quiet_start=quiet[0],
        quiet_end=quiet[1],
    )
    started = time.perf_counter()
    sent = history(ws.pk, contacts, channel, template, now)
    analyze([m._meta.db_table for m in (OutboxMessage, AudienceMember, BroadcastRun)])
    print(
        f"history: {sent:,} SMS sent in the last 24 hours ({time.perf_counter() - started:.1f} s)"
    )
    segments = {s.name: s for s in Segment.objects.filter(workspace=ws)}
    broadcast = broadcast_create(
        workspace=ws,
        actor=actor,
        name="会员日短信",
        channel_id=channel.pk,
        template_id=template.pk,
        include_segments=[segments[ALL_MEMBERS].pk],
        exclude_segments=[segments[COMPLAINTS].pk],
        holdout_percent=HOLDOUT,
    )
    return channel, template, broadcast, segments, start


# --- measuring ---------------------------------------------------------------------------------


def measure(ws, contacts: int, args, fake) -> dict:
    from django.db import connection

    channel, template, broadcast, segments, quiet_start = setup_run(ws, contacts)
    plan = bench_plan(ws, contacts, broadcast, args)
    quiet = quiet_hours_demo(ws, channel, template, segments, quiet_start)
    baseline = python_baseline(ws, broadcast, contacts, args)
    python_vs_sql = baseline["extrapolated_s"] / plan["plan_s"]
    print(
        f"python per contact: {baseline['per_contact_ms']:.2f} ms "
        f"({baseline['sample']:,} contacts, {baseline['seconds']:.1f} s); "
        f"{baseline['extrapolated_s']:,.0f} s extrapolated to {contacts:,} contacts vs "
        f"{plan['plan_s']:.1f} s in SQL: {python_vs_sql:.0f}x; decisions equal on "
        f"{baseline['matches']:,} of {baseline['sample']:,}"
    )
    send = bench_send(ws, channel, broadcast, args, fake)
    journey = bench_journey(ws, channel, template, args)
    met = {
        "plan": plan["plan_s"] < TARGETS["plan_s"],
        "journey": journey["journey_steps_per_s"] >= TARGETS["journey_steps_per_s"],
        "send": send["send_msgs_per_s"] >= TARGETS["send_msgs_per_s"],
    }
    return {
        "database": connection.vendor,
        "contacts": contacts,
        "audience": plan["funnel"]["audience"],
        "to_send": plan["funnel"]["to_send"],
        "funnel": plan["funnel"],
        "funnel_as_expected": plan["as_expected"],
        "plan_s": round(plan["plan_s"], 2),
        "plan_statements_s": plan["plan_statements_s"],
        "preview_s": round(plan["preview_s"], 2),
        "replan_s": round(plan["replan_s"], 2),
        "replan_added": plan["replan_added"],
        "quiet_hours": quiet,
        "python_sample": baseline["sample"],
        "python_per_contact_ms": round(baseline["per_contact_ms"], 3),
        "python_baseline_s_extrapolated": round(baseline["extrapolated_s"], 1),
        "python_vs_sql": round(python_vs_sql, 1),
        "python_decisions_equal": baseline["matches"] == baseline["sample"],
        **send,
        **journey,
        "targets": TARGETS,
        "met": met,
    }


def bench_plan(ws, contacts: int, broadcast, args) -> dict:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from reach_pool import contact_base, expected_funnel

    from siyu.campaigns import planner
    from siyu.campaigns.actions import broadcast_send
    from siyu.campaigns.models import AudienceMember
    from siyu.core.audit import Actor
    from siyu.messaging.models import OutboxMessage

    actor = Actor.system("bench")
    started = time.perf_counter()
    preview = planner.preview(broadcast)
    preview_s = time.perf_counter() - started
    print(f"preview: {preview_s:.2f} s")

    if args.explain and connection.vendor == "postgresql":
        from django.utils import timezone

        rows = planner.classified(broadcast, timezone.now()).values("id", "group", "reason")
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            print("\n".join(r[0] for r in cursor.fetchall()))

    with CaptureQueriesContext(connection) as statements:
        started = time.perf_counter()
        broadcast = broadcast_send(workspace=ws, actor=actor, broadcast=broadcast)
        plan_s = time.perf_counter() - started
    slowest = sorted(statements.captured_queries, key=lambda q: -float(q["time"]))[:3]
    split = {statement_label(q["sql"]): round(float(q["time"]), 2) for q in slowest}
    run = broadcast.runs.get(number=1)
    funnel = {k: run.counts[k] for k in ("audience", "holdout", "suppressed", "to_send")}
    queued = OutboxMessage.objects.filter(workspace=ws, source=run.source).count()
    print(
        f"plan (broadcast_send, run 1): {plan_s:.2f} s; slowest statements: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in split.items())
    )
    print(
        f"  audience {funnel['audience']:,}, holdout {funnel['holdout']:,} "
        f"({funnel['holdout'] / funnel['audience']:.2%}), suppressed "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(funnel["suppressed"].items()))
        + f", to send {funnel['to_send']:,}; queued rows {queued:,}; due {run.counts['due_at']}"
    )
    base = contact_base(ws.pk, contacts)
    expected = expected_funnel(contacts, base, f"broadcast:{broadcast.pk}", HOLDOUT * 100)
    same_preview = {k: preview[k] for k in funnel} == funnel
    as_expected = expected == funnel and queued == funnel["to_send"]
    print(
        f"  checks: preview equals the plan: {same_preview}; the funnel the seed predicts: "
        f"{expected == funnel}; queued = to_send: {queued == funnel['to_send']}"
    )
    if not (same_preview and as_expected):
        print(f"  MISMATCH: preview {preview}, expected {expected}")

    # the same run planned again: its audience rows deleted, plan_run again; the outbox keys
    # are taken, so nothing is added (rolled back afterwards)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {AudienceMember._meta.db_table} WHERE run_id = %s", [run.pk]
            )
        started = time.perf_counter()
        again = planner.plan_run(run)
        replan_s = time.perf_counter() - started
        added = OutboxMessage.objects.filter(workspace=ws, source=run.source).count() - queued
        transaction.set_rollback(True)
    print(f"plan the same run again: {replan_s:.2f} s, {added} messages added (dedupe)")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {AudienceMember._meta.db_table}")
            cursor.execute(f"VACUUM ANALYZE {OutboxMessage._meta.db_table}")
    return {
        "plan_s": plan_s,
        "preview_s": preview_s,
        "replan_s": replan_s,
        "replan_added": added,
        "replan_same_funnel": {k: again[k] for k in funnel} == funnel,
        "funnel": funnel,
        "as_expected": bool(same_preview and as_expected),
        "plan_statements_s": split,
    }


def quiet_hours_demo(ws, channel, template, segments, quiet_start) -> dict:
    """A small broadcast (近期投诉) planned at a moment inside quiet hours, rolled back: its
    messages must be due when the quiet hours end. Quiet hours are one comparison per run
    (the due time of all its rows), not per contact."""
    from django.db import transaction
    from reach_pool import COMPLAINTS

    from siyu.campaigns import planner
    from siyu.campaigns.models import Broadcast, BroadcastRun
    from siyu.messaging import guardrails
    from siyu.messaging.models import OutboxMessage

    inside = (quiet_start + datetime.timedelta(minutes=30)).astimezone(datetime.UTC)
    end = guardrails.quiet_until(guardrails.policy_for(ws), inside)
    with transaction.atomic():
        small = Broadcast.objects.create(
            workspace=ws,
            name="静默时段演示",
            channel=channel,
            template=template,
            include_segments=[segments[COMPLAINTS].pk],
        )
        run = BroadcastRun.objects.create(
            workspace=ws, broadcast=small, number=1, planned_at=inside
        )
        started = time.perf_counter()
        counts = planner.plan_run(run, inside)
        seconds = time.perf_counter() - started
        due = set(
            OutboxMessage.objects.filter(workspace=ws, source=run.source)
            .values_list("due_at", flat=True)
            .distinct()
        )
        transaction.set_rollback(True)
    ok = end is not None and due == {end}
    print(
        f"quiet hours: a run planned at {inside:%H:%M} UTC (inside) queues {counts['to_send']:,} "
        f"messages due at {end:%H:%M} UTC, when they end: {ok} ({seconds:.2f} s)"
    )
    return {
        "planned_at": inside.isoformat(),
        "due_at": end.isoformat() if end else None,
        "messages": counts["to_send"],
        "all_due_at_end": ok,
    }


def python_baseline(ws, broadcast, contacts: int, args) -> dict:
    """The same plan per contact with the ORM, as a naive implementation would write it,
    on a sample; one transaction, rolled back."""
    from django.db import transaction
    from django.utils import timezone

    from siyu.campaigns.models import AudienceMember, BroadcastRun
    from siyu.contacts.models import Consent, ConsentStatus, Contact, Identity
    from siyu.messaging import guardrails
    from siyu.messaging.actions import outbox_key
    from siyu.messaging.channels import transport_class
    from siyu.messaging.models import OutboxMessage
    from siyu.segments.compiler import sample_bucket
    from siyu.segments.models import SegmentMember

    broadcast.refresh_from_db()
    channel = broadcast.channel
    transport = transport_class(channel.kind)
    policy = guardrails.policy_for(ws)
    caps = guardrails.caps_for(policy, channel.kind, channel.settings)
    threshold = round(float(broadcast.holdout_percent) * 100)
    seed = f"broadcast:{broadcast.pk}"
    first = Contact.objects.filter(workspace=ws).order_by("pk").values_list("pk", flat=True)[0]
    rng = random.Random(args.seed)
    ids = sorted(rng.sample(range(first, first + contacts), min(args.sample, contacts)))
    decisions: dict[int, tuple[str, str]] = {}
    with transaction.atomic():
        now = timezone.now()
        run = BroadcastRun.objects.create(workspace=ws, broadcast=broadcast, number=999)
        due_at = guardrails.quiet_until(policy, now) or now
        started = time.perf_counter()
        for contact_id in ids:
            contact = Contact.objects.get(workspace=ws, pk=contact_id)
            members = SegmentMember.objects.filter(workspace=ws, contact_id=contact.pk)
            if (
                broadcast.include_segments
                and not members.filter(segment_id__in=broadcast.include_segments).exists()
            ):
                continue
            if members.filter(segment_id__in=broadcast.exclude_segments).exists():
                continue
            group, reason = "send", ""
            if sample_bucket(contact.pk, seed) < threshold:
                group = "holdout"
            else:
                consent = Consent.objects.filter(
                    workspace=ws, contact=contact, channel=transport.consent_channel
                ).first()
                status = consent.status if consent else None
                if (
                    status != ConsentStatus.GRANTED
                    if channel.consent_required
                    else status == ConsentStatus.WITHDRAWN
                ):
                    reason = "no_consent"
                elif not Identity.objects.filter(
                    workspace=ws, contact=contact, kind=transport.address_identity, app_id=""
                ).exists():
                    reason = "no_address"
                else:
                    for cap in caps:
                        sent = OutboxMessage.objects.filter(
                            workspace=ws,
                            contact=contact,
                            status__in=guardrails.COUNTED,
                            sent_at__gte=now - cap.window,
                        )
                        if cap.kinds is not None:
                            sent = sent.filter(channel__kind__in=cap.kinds)
                        if sent.count() >= cap.limit:
                            reason = f"frequency_cap:{cap.name}"
                            break
                if reason:
                    group = "suppressed"
            AudienceMember.objects.create(
                workspace=ws, run=run, contact=contact, group=group, reason=reason
            )
            if group == "send":
                OutboxMessage.objects.create(
                    workspace=ws,
                    key=outbox_key(run.source, contact.pk, channel.kind),
                    contact=contact,
                    channel=channel,
                    template_id=broadcast.template_id,
                    source=run.source,
                    due_at=due_at,
                    created_at=now,
                )
            decisions[contact.pk] = (group, reason)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    planned = {
        row[0]: (row[1], row[2])
        for row in AudienceMember.objects.filter(
            run__broadcast=broadcast, run__number=1, contact_id__in=ids
        ).values_list("contact_id", "group", "reason")
    }
    matches = sum(decisions.get(c) == planned.get(c) for c in ids)
    per_contact = seconds / len(ids)
    return {
        "sample": len(ids),
        "seconds": seconds,
        "per_contact_ms": per_contact * 1000,
        "extrapolated_s": per_contact * contacts,
        "matches": matches,
    }


def bench_send(ws, channel, broadcast, args, fake) -> dict:
    from django.db import connection

    from siyu.messaging import sender
    from siyu.messaging.addresses import addresses_for
    from siyu.messaging.models import OutboxMessage, OutboxStatus

    run = broadcast.runs.get(number=1)
    queue = OutboxMessage.objects.filter(channel=channel, status=OutboxStatus.QUEUED)
    # the sender's query for the next group, against the whole queue of the broadcast
    full_queue = queue.count()
    due_full_ms = timed_ms(lambda: sender._due(channel, sender.GROUP))
    if args.explain and connection.vendor == "postgresql":
        explain_due(channel)
    # the first --send messages stay due, the rest wait a century (untimed)
    limit = min(args.send, full_queue)
    order = queue.order_by("due_at", "id").values_list("due_at", "id")
    last_due, last_id = order[limit - 1]
    moved = (
        queue.filter(due_at__gte=last_due)
        .exclude(due_at=last_due, id__lte=last_id)
        .update(due_at=FAR)
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {OutboxMessage._meta.db_table}")
    due_ms = timed_ms(lambda: sender._due(channel, sender.GROUP))
    print(
        f"send: {limit:,} of {full_queue:,} queued messages kept due ({moved:,} moved ahead); "
        f"the sender's next-group query takes {due_full_ms:.1f} ms on the whole queue, "
        f"{due_ms:.1f} ms on the kept part"
    )

    ceiling = vendor_ceiling(channel, args.ceiling_calls)
    if ceiling:
        print(
            f"  vendor calls alone (transport.send, {sender.THREADS} threads, no outbox): "
            f"{ceiling:,.0f} calls/s: the ceiling of one sender process on this machine"
        )

    phases, originals = instrument(sender)
    pids = {"bench": os.getpid(), "fake": fake.pid, "database": backend_pid()}
    cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
    process_before = time.process_time()
    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profile:
        profile.enable()
    tally = sender.send_channel(channel.pk, max_seconds=args.send_seconds)
    if profile:
        profile.disable()
    send_s = time.perf_counter() - started
    process_cpu = time.process_time() - process_before
    cpu = {
        k: round(cpu_seconds(p) - cpu_before[k], 1) if cpu_before[k] is not None else None
        for k, p in pids.items()
    }
    if cpu["bench"] is None:
        cpu["bench"] = round(process_cpu, 1)
    for name, function in originals.items():
        setattr(sender, name, function)
    whole = send_whole_queue(channel, run, args) if args.whole_queue_seconds > 0 else None
    fake_seen = stop_fake(fake, f"{run.source}:")
    sent_contacts = list(
        OutboxMessage.objects.filter(
            workspace=ws, source=run.source, status=OutboxStatus.SENT
        ).values_list("contact_id", flat=True)
    )
    phones = addresses_for(ws.pk, "phone", "", sent_contacts)
    sent_phones = sorted(phones[c][0].removeprefix("+86") for c in sent_contacts)
    digest = hashlib.sha256("\n".join(sent_phones).encode()).hexdigest()
    rate = tally.sent / send_s if send_s else 0.0
    once = (
        fake_seen.get("accepted") == len(sent_phones) == tally.sent + (whole or {}).get("sent", 0)
        and fake_seen.get("distinct_phones") == len(sent_phones)
        and fake_seen.get("phones_sha256") == digest
    )
    print(
        f"send_channel: {tally.sent:,} sent, {tally.failed} failed, {tally.suppressed} "
        f"suppressed, {tally.retried} retried in {send_s:.1f} s: {rate:,.0f} messages/s"
    )
    if whole:
        print(
            f"  with the whole queue due ({whole['queue']:,} messages, next-group query "
            f"{whole['next_group_ms']:.0f} ms): {whole['sent']:,} sent in {whole['seconds']:.1f} s:"
            f" {whole['per_s']:,.0f} messages/s"
        )
    print(
        f"  the fake accepted {fake_seen.get('accepted', 0):,} messages "
        f"({fake_seen.get('requests', 0):,} calls), {fake_seen.get('distinct_phones', 0):,} "
        f"distinct phones; each message recorded sent reached it exactly once, and only "
        f"those: {once}"
    )
    groups = phases["groups"] or 1
    other = send_s - sum(v for k, v in phases.items() if k != "groups")
    print(
        f"  where the time goes ({phases['groups']:,} groups of {sender.GROUP}): next group "
        f"{phases['due']:.1f} s, decide (guardrails, addresses, rendering, mark sending) "
        f"{phases['decide']:.1f} s, vendor calls ({sender.THREADS} threads) "
        f"{phases['vendor']:.1f} s, record {phases['record']:.1f} s, other {other:.1f} s; "
        f"{send_s / groups * 1000:.0f} ms a group"
    )
    print(
        f"  CPU seconds: bench process {cpu['bench']}, fake vendor {cpu['fake']}, "
        f"database backend {cpu['database']} (of {send_s * os.cpu_count():.0f} on "
        f"{os.cpu_count()} cores)"
    )
    if profile:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("cumulative").print_stats(
            "siyu|django/db/models/query.py|jinja2/environment", 25
        )
        stats.sort_stats("tottime").print_stats(15)
        print("  cProfile of the sender's main thread (vendor calls run in its pool threads):")
        print(out.getvalue())
    return {
        "send_messages": tally.sent,
        "send_s": round(send_s, 2),
        "send_msgs_per_s": round(rate, 1),
        "send_each_once": once,
        "send_breakdown_s": {
            "next_group": round(phases["due"], 2),
            "decide": round(phases["decide"], 2),
            "vendor_calls": round(phases["vendor"], 2),
            "record": round(phases["record"], 2),
            "other": round(other, 2),
        },
        "send_cpu_s": cpu,
        "send_next_group_query_ms": {
            "whole_queue": round(due_full_ms, 1),
            "kept": round(due_ms, 1),
        },
        "send_queue": full_queue,
        "vendor_calls_alone_per_s": round(ceiling, 1) if ceiling else None,
        "send_msgs_per_s_whole_queue": whole["per_s"] if whole else None,
        "send_whole_queue": whole,
        "vendor_delay_ms": args.vendor_delay_ms,
    }


def send_whole_queue(channel, run, args) -> dict:
    """The sender again for a while with every queued message of the run due, as after a
    real broadcast (the messages moved ahead are due again, untimed)."""
    from django.db import connection

    from siyu.messaging import sender
    from siyu.messaging.models import OutboxMessage, OutboxStatus

    due_at = datetime.datetime.fromisoformat(run.counts["due_at"])
    queue = OutboxMessage.objects.filter(channel=channel, status=OutboxStatus.QUEUED)
    queue.filter(due_at=FAR).update(due_at=due_at)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {OutboxMessage._meta.db_table}")
    size = queue.count()
    next_group_ms = timed_ms(lambda: sender._due(channel, sender.GROUP))
    started = time.perf_counter()
    tally = sender.send_channel(channel.pk, max_seconds=args.whole_queue_seconds)
    seconds = time.perf_counter() - started
    return {
        "queue": size,
        "next_group_ms": round(next_group_ms, 1),
        "sent": tally.sent,
        "seconds": round(seconds, 1),
        "per_s": round(tally.sent / seconds, 1) if seconds else 0.0,
    }


def bench_journey(ws, channel, template, args) -> dict:
    """Every contact of the pool through a 5-step journey with a wait (reach_journey.py)."""
    from reach_journey import bench_journey as run_journey

    return run_journey(ws, channel, template)


# --- helpers -----------------------------------------------------------------------------------


def statement_label(sql: str) -> str:
    words = sql.split()
    if words and words[0] == "INSERT" and "INTO" in words:
        return f"INSERT {words[words.index('INTO') + 1]}"
    return " ".join(words[:3])[:40]


def timed_ms(call, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def vendor_ceiling(channel, calls: int) -> float | None:
    """SendSms calls per second through the channel's transport from the sender's thread
    count, without the outbox (keys `ceiling:<n>`, left out of the fake's accounting)."""
    from concurrent.futures import ThreadPoolExecutor

    from siyu.messaging import sender
    from siyu.messaging.channels.base import Outcome, Outgoing

    if calls <= 0:
        return None
    transport = sender.transport_for(channel)
    content = {"template_code": "SMS_153055065", "params": {"name": "会员1", "city": "上海"}}

    def call(n: int) -> bool:
        out = Outgoing(f"ceiling:{n}", "+8613800000001", content)
        return transport.send([out])[0].outcome == Outcome.SENT

    with ThreadPoolExecutor(sender.THREADS) as pool:
        list(pool.map(call, range(min(calls, 200))))  # connections opened
        started = time.perf_counter()
        ok = sum(pool.map(call, range(200, 200 + calls)))
        seconds = time.perf_counter() - started
    if ok != calls:
        print(f"  {calls - ok} of the ceiling's calls failed")
    return calls / seconds


def backend_pid() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def explain_due(channel) -> None:
    """EXPLAIN ANALYZE of the sender's query for its next group (sender._due)."""
    from django.db import connection
    from django.utils import timezone

    from siyu.messaging.models import OutboxMessage, OutboxStatus

    qs = (
        OutboxMessage.objects.filter(
            channel=channel, status=OutboxStatus.QUEUED, due_at__lte=timezone.now()
        )
        .select_related("template")
        .order_by("due_at", "id")[:100]
    )
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("\n".join(r[0] for r in cursor.fetchall()))


def instrument(sender) -> tuple[dict, dict]:
    """Wall time of the sender's phases: its module functions wrapped (the caller puts the
    originals back)."""
    phases = {"due": 0.0, "decide": 0.0, "vendor": 0.0, "record": 0.0, "groups": 0}
    originals = {name: getattr(sender, name) for name in ("_due", "_decide", "_record")}
    originals["_send_group"] = sender._send_group

    def wrap(name, phase):
        inner = originals[name]

        def timed(*a, **kw):
            started = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                phases[phase] += time.perf_counter() - started

        return timed

    sender._due = wrap("_due", "due")
    sender._decide = wrap("_decide", "decide")
    sender._record = wrap("_record", "record")
    group = wrap("_send_group", "vendor")

    def send_group(*a, **kw):
        before = phases["decide"] + phases["record"]
        phases["groups"] += 1
        group(*a, **kw)
        # the group's own time minus its decide and record: the vendor calls
        phases["vendor"] -= phases["decide"] + phases["record"] - before

    sender._send_group = send_group
    return phases, originals


if __name__ == "__main__":
    main()

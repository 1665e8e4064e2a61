"""Event to real-time segment membership, end to end.

    [SIYU_DATABASE_URL=postgres://…/siyu_bench_latency] .venv/bin/python bench/segment_latency.py

Starts `siyu serve --with-worker` (gunicorn and one task worker, as `siyu demo` does), then
20 times: POST /v1/track for a new person (write key in HTTP Basic) and poll until that
person is a member of a real-time segment ("Product Viewed at least once today"). The time
from the request to the stored membership covers accepting, the worker picking the task up
(it polls every 0.5 s), resolving the event to a new contact, its scores and the segment's
re-evaluation. The last line printed is one JSON object."""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from contacts import ensure_database, pct  # noqa: E402

RULE = {
    "type": "event",
    "event": "Product Viewed",
    "op": "gte",
    "value": 1,
    "window": {"last_days": 1},
}


def main() -> None:
    os.environ.setdefault("SIYU_HOME", str(REPO / "var" / "bench-latency"))
    Path(os.environ["SIYU_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_database(os.environ.get("SIYU_DATABASE_URL", ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from siyu.accounts.actions import workspace_create
    from siyu.contacts.actions.identity import find_identity
    from siyu.core.audit import Actor
    from siyu.core.models import Workspace
    from siyu.segments import actions
    from siyu.segments.models import SegmentMember
    from siyu.tracking.actions import writekey_create

    call_command("migrate", verbosity=0)
    actor = Actor.system("bench")
    ws = Workspace.objects.filter(slug="bench-latency").first() or workspace_create(
        name="实时压测", slug="bench-latency", actor=actor
    )
    _, key = writekey_create(workspace=ws, actor=actor, name="latency")
    segment = actions.segment_create(
        workspace=ws, actor=actor, name=f"今日浏览 {time.time():.0f}", rule=RULE, realtime=True
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    connection.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port), "--with-worker"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        latencies = []
        for n in range(20):
            person = f"latency-{time.time_ns()}-{n}"
            body = json.dumps({"userId": person, "event": "Product Viewed", "messageId": person})
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(
                "POST",
                "/v1/track",
                body=body.encode(),
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            assert conn.getresponse().status == 200
            while True:
                identity = find_identity(ws, "user_id", person, "")
                if (
                    identity
                    and SegmentMember.objects.filter(
                        segment=segment, contact_id=identity.contact_id
                    ).exists()
                ):
                    break
                if time.perf_counter() - started > 10:
                    raise SystemExit("no membership after 10 s")
                time.sleep(0.01)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p95 = pct(latencies, 50), pct(latencies, 95)
    print(f"{connection.vendor}: event to membership p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
          f"max {max(latencies):.0f} ms")  # fmt: skip
    print(json.dumps({"database": connection.vendor, "event_to_membership_p50_ms": round(p50),
                      "event_to_membership_p95_ms": round(p95),
                      "event_to_membership_max_ms": round(max(latencies))}))  # fmt: skip


def wait_for(port: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(2)  # the worker starts beside the server
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()

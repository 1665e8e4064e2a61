import logging
import os
import socket
import threading
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.crypto import get_random_string

from siyu.core.jobs import jobs_requeue_stale
from siyu.core.models import WorkerHeartbeat

POLL_SECONDS = 600  # vendors that report by being asked (WeCom mass sends) are asked this often
HEARTBEAT_SECONDS = 5
REQUEUE_SECONDS = 60  # jobs whose worker died are queued again within a minute of going stale
CLEANUP_SECONDS = 3600  # export and import files past their time are deleted within the hour

log = logging.getLogger(__name__)


def _beat(worker_id: str, started, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            close_old_connections()
            WorkerHeartbeat.objects.update_or_create(
                worker_id=worker_id,
                defaults={
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": started,
                    "last_seen_at": timezone.now(),
                },
            )
        except Exception:  # noqa: BLE001 - a missed beat must never kill the worker
            pass
        finally:
            connection.close()
        stop.wait(HEARTBEAT_SECONDS)


def cleanup_exports() -> str:
    """Delete expired export files (see contacts/export.py); what was done, or "" if nothing.
    A failure is logged and never stops the worker."""
    from siyu.contacts.export import exports_cleanup

    try:
        result = exports_cleanup()
    except Exception:  # noqa: BLE001 - housekeeping must never kill the worker
        log.exception("export cleanup failed")
        return ""
    return str(result) if result.changed else ""


def cleanup_imports() -> str:
    """Delete old uploads and expired import error reports (see contacts/imports/cleanup.py);
    what was done, or "" if nothing. A failure is logged and never stops the worker."""
    from siyu.contacts.imports.cleanup import imports_cleanup

    try:
        result = imports_cleanup()
    except Exception:  # noqa: BLE001 - housekeeping must never kill the worker
        log.exception("import cleanup failed")
        return ""
    return str(result) if result.changed else ""


def cleanup_files() -> list[str]:
    """The export and the import cleanup, each on its own: one failing does not stop the
    other. What was done, one line per cleanup that did something."""
    done = [("export cleanup", cleanup_exports()), ("import cleanup", cleanup_imports())]
    return [f"{name}: {text}" for name, text in done if text]


def requeue_stale() -> int:
    """Queue again the jobs whose worker died (no heartbeat for jobs.STALE_SECONDS)."""
    try:
        return jobs_requeue_stale()
    except Exception:  # noqa: BLE001 - housekeeping must never kill the worker
        log.exception("requeueing stale jobs failed")
        return 0


def enqueue_segment_work() -> None:
    """Segment refreshes and CLV fits that are due (segments/refresh.py)."""
    from siyu.segments.refresh import enqueue_due

    try:
        enqueue_due()
    except Exception:  # noqa: BLE001 - housekeeping must never kill the worker
        log.exception("scheduling segment refreshes failed")


def enqueue_sending() -> None:
    """Senders for messages that became due (quiet hours over, backoff passed) or that a
    stopped sender left in flight (messaging/scheduling.py)."""
    from siyu.campaigns.scheduling import journeys_live, mark_done, plan_due
    from siyu.campaigns.tasks import step_journeys
    from siyu.messaging.scheduling import enqueue_due

    try:
        plan_due()  # broadcast runs whose time has come queue their messages first
        if journeys_live():  # their timers, in a task: a big batch must not stall this thread
            step_journeys.enqueue()
        enqueue_due()
        mark_done()
    except Exception:  # noqa: BLE001 - housekeeping must never kill the worker
        log.exception("scheduling message sending failed")


def enqueue_vendor_polls() -> None:
    from siyu.messaging.scheduling import enqueue_polls

    try:
        enqueue_polls()
    except Exception:  # noqa: BLE001 - housekeeping must never kill the worker
        log.exception("asking vendors for results failed")


def _housekeeping(stop: threading.Event) -> None:
    """Every REQUEUE_SECONDS the stale jobs, every CLEANUP_SECONDS the files; in its own thread
    so that a slow disk never delays a beat."""
    last_cleanup = last_poll = time.monotonic()
    while not stop.wait(REQUEUE_SECONDS):
        try:
            close_old_connections()
            requeue_stale()
            enqueue_segment_work()
            enqueue_sending()
            if time.monotonic() - last_poll >= POLL_SECONDS:
                last_poll = time.monotonic()
                enqueue_vendor_polls()
            if time.monotonic() - last_cleanup >= CLEANUP_SECONDS:
                last_cleanup = time.monotonic()
                cleanup_files()
        finally:
            connection.close()


class Command(BaseCommand):
    help = "Run a background task worker (django-tasks-db) that reports a heartbeat."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--interval", type=float, default=0.5)

    def handle(self, *args, batch, interval, **options):
        worker_id = f"{socket.gethostname()}-{os.getpid()}-{get_random_string(6)}"
        stop = threading.Event()
        beat = threading.Thread(target=_beat, args=(worker_id, timezone.now(), stop), daemon=True)
        beat.start()
        self.stdout.write(f"siyu worker {worker_id} started")
        requeued = requeue_stale()  # once now, then every REQUEUE_SECONDS
        if requeued:
            self.stdout.write(f"requeued {requeued} job(s) a stopped worker left running")
        for line in cleanup_files():  # once now, then every CLEANUP_SECONDS
            self.stdout.write(line)
        enqueue_segment_work()  # once now, then every REQUEUE_SECONDS
        enqueue_sending()
        housekeeping = threading.Thread(target=_housekeeping, args=(stop,), daemon=True)
        housekeeping.start()
        try:
            call_command(
                "db_worker",
                worker_id=worker_id,
                interval=interval,
                batch=batch,
                reload=False,
                queue_name="*",
                verbosity=options.get("verbosity", 1),
            )
        finally:
            stop.set()
            beat.join(timeout=2)
            housekeeping.join(timeout=2)
            WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from siyu.core import crypto
from siyu.core.models import WorkerHeartbeat

WORKER_STALE_SECONDS = 30


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return f"{connection.vendor} {settings.DATABASES['default'].get('NAME')}"


def check_migrations() -> str:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied: run `siyu migrate`")
    return "all applied"


def check_worker() -> str:
    from django_tasks_db.models import DBTaskResult

    fresh = timezone.now() - datetime.timedelta(seconds=WORKER_STALE_SECONDS)
    alive = WorkerHeartbeat.objects.filter(last_seen_at__gte=fresh).count()
    ready = DBTaskResult.objects.filter(status="READY")
    oldest = ready.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
    lag = f", oldest queued task {(timezone.now() - oldest).seconds}s old" if oldest else ""
    if not alive:
        raise RuntimeError(
            f"no worker seen in {WORKER_STALE_SECONDS}s: run `siyu worker` "
            f"({ready.count()} task(s) queued{lag})"
        )
    return f"{alive} worker(s) alive, {ready.count()} task(s) queued{lag}"


def check_encryption() -> str:
    from siyu.contacts.models import Identity

    summary = crypto.check_encryption()
    sample = (
        Identity.objects.exclude(value_enc="")
        .order_by("-id")
        .values_list("value_enc", flat=True)
        .first()
    )
    if sample:
        crypto.decrypt(sample)  # stored data is readable with the configured keys
    return summary


def check_ingestion() -> str:
    from siyu.tracking.queries import ingestion_lag

    return str(ingestion_lag())


CHECKS = [
    ("database", check_database),
    ("migrations", check_migrations),
    ("worker", check_worker),
    ("encryption key", check_encryption),
    ("ingestion", check_ingestion),
]


class Command(BaseCommand):
    help = "Check the database, migrations, task worker and encryption key."

    def handle(self, *args, **options):
        failed = False
        for name, check in CHECKS:
            try:
                self.stdout.write(self.style.SUCCESS(f"ok    {name}: {check()}"))
            except Exception as exc:  # noqa: BLE001 - report every failure, keep checking
                failed = True
                self.stdout.write(self.style.ERROR(f"FAIL  {name}: {exc}"))
        if failed:
            raise SystemExit(1)

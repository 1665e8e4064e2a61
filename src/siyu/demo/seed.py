"""Append many synthetic contacts to a workspace (the large pool for benchmarks), in batches,
each in its own transaction with its own audit row (which also records the counter range)."""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from siyu.contacts.models import Consent, Contact, ContactTag, Identity, TimelineEntry
from siyu.core.audit import Actor, audit
from siyu.core.models import Workspace
from siyu.demo.bulk import Counts, Pool, insert_batch, next_counter
from siyu.demo.people import MAX_COUNTER

DEFAULT_BATCH = 10_000
LOADED = (Contact, Identity, ContactTag, Consent, TimelineEntry)


@dataclass
class Progress:
    done: int
    total: int
    rows: int
    seconds: float

    @property
    def contacts_per_second(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def seed_contacts(
    workspace: Workspace,
    count: int,
    *,
    seed: int = 2026,
    batch: int = DEFAULT_BATCH,
    actor: Actor | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Counts:
    """Add exactly `count` contacts. Safe to run while others read; concurrent seeders of one
    workspace take turns per batch (the workspace row is locked while a batch is written)."""
    actor = actor or Actor.system("cli:seed-demo")
    pool = Pool.of(workspace)
    now = timezone.now()
    total = Counts()
    started = time.perf_counter()
    while total.contacts < count:
        n = min(batch, count - total.contacts)
        # Fast path first; if an identity already exists (a real contact's phone, say), redo
        # the batch checking every identity and skipping the taken counter values.
        for precheck in (False, True):
            try:
                with transaction.atomic():
                    if connection.vendor == "postgresql":
                        # Synthetic data: a crash may lose the last batches, never corrupt.
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL synchronous_commit = off")
                    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
                    start = next_counter(workspace)
                    if start + 2 * n > MAX_COUNTER:
                        raise RuntimeError("the synthetic identity space is exhausted")
                    end, counts = insert_batch(
                        pool,
                        start=start,
                        count=n,
                        rng=random.Random(f"{seed}:{start}"),
                        now=now,
                        rich=False,
                        precheck=precheck,
                    )
                    audit(
                        workspace=workspace,
                        actor=actor,
                        action="demo.seed",
                        obj=workspace,
                        after={
                            "seed": seed,
                            **counts.as_dict(),
                            "counter_start": start,
                            "counter_end": end,
                        },
                    )
                break
            except IntegrityError:
                if precheck:
                    raise
        total.add(counts)
        if progress:
            progress(Progress(total.contacts, count, total.rows, time.perf_counter() - started))
    if connection.vendor == "postgresql" and total.contacts:
        # Fresh statistics after a bulk load, or the planner may seq-scan until autovacuum
        # gets round to it (seen: 200 ms for a 50-contact consent prefetch at 1M contacts).
        with connection.cursor() as cursor:
            for model in LOADED:
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return total

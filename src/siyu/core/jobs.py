"""Background jobs: created in a transaction, enqueued on commit, claimed exactly once.

A handler is registered per kind (`@job_handler("contacts.bulk_tag")`) and called with the
job and a `progress(done, total)` callback. It must be safe to run again after a crash
(each batch it writes is atomic and idempotent).

Claiming a job and every `progress()` call write its heartbeat (`heartbeat_at`). A job left
`running` whose heartbeat is older than `STALE_SECONDS` lost its worker (killed, machine
restarted) and is queued again by `jobs_requeue_stale`, which every worker runs when it starts
and then every minute; a job that is still reporting progress is never run twice, however
long it takes. So a handler must call `progress()` at least every few minutes: every current
handler calls it once per batch (bulk tag and export: 5,000 contacts; imports: 500 rows),
which takes seconds."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from siyu.core.audit import Actor
from siyu.core.models import Job, Workspace

log = logging.getLogger(__name__)
HANDLERS: dict[str, Callable] = {}
STALE_SECONDS = 600  # a running job without a heartbeat for this long has lost its worker


def job_handler(kind: str) -> Callable:
    def register(func: Callable) -> Callable:
        HANDLERS[kind] = func
        return func

    return register


def job_create(*, workspace: Workspace, actor: Actor, kind: str, params: dict) -> Job:
    from siyu.core.tasks import run_job

    job = Job.objects.create(
        workspace=workspace,
        kind=kind,
        params=params,
        actor_label=actor.label,
        actor_role=actor.role,
        created_by=actor.user,
    )
    transaction.on_commit(lambda: run_job.enqueue(job.pk))
    return job


def job_actor(job: Job) -> Actor:
    return Actor(user=job.created_by, label=job.actor_label, role=job.actor_role)


def job_run(job_id: int) -> None:
    now = timezone.now()
    # A conditional UPDATE: of two workers given the same job, one claims it.
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:  # another worker has it, or it already ran
        return
    job = Job.objects.select_related("workspace", "created_by").get(pk=job_id)

    def progress(done: int, total: int | None = None) -> None:
        fields = {"done": done} if total is None else {"done": done, "total": total}
        Job.objects.filter(pk=job_id).update(**fields, heartbeat_at=timezone.now())

    try:
        result = HANDLERS[job.kind](job, progress)
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job.kind)
        Job.objects.filter(pk=job_id).update(
            status=Job.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        return
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.DONE, result=result or {}, finished_at=timezone.now()
    )


def _stale(cutoff) -> Q:
    """Running, and its last heartbeat (its start, for a job claimed before heartbeats were
    written) before the cutoff."""
    return Q(status=Job.Status.RUNNING) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )


def jobs_requeue_stale(older_than_seconds: int = STALE_SECONDS) -> int:
    """Put back jobs left `running` by a worker that died (killed, machine restarted): those
    without a heartbeat for `older_than_seconds`. A job still reporting progress is left to
    its worker, however long ago it started. Handlers are idempotent per batch, so running
    such a job again finishes it correctly."""
    from siyu.core.tasks import run_job

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(Job.objects.filter(_stale(cutoff)).values_list("pk", flat=True))
    requeued = 0
    for job_id in stale:
        with transaction.atomic():
            # Checked again in the UPDATE: a beat since the SELECT keeps the job with its worker.
            if Job.objects.filter(_stale(cutoff), pk=job_id).update(status=Job.Status.QUEUED):
                requeued += 1
                log.warning("job %s had no heartbeat since %s: queued again", job_id, cutoff)
                transaction.on_commit(lambda job_id=job_id: run_job.enqueue(job_id))
    return requeued

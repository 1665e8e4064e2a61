"""Background jobs: created in a transaction, enqueued on commit, claimed exactly once.

A handler is registered per kind (`@job_handler("contacts.bulk_tag")`) and called with the
job and a `progress(done, total)` callback. It must be safe to run again after a crash
(each batch it writes is atomic and idempotent)."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from siyu.core.audit import Actor
from siyu.core.models import Job, Workspace

log = logging.getLogger(__name__)
HANDLERS: dict[str, Callable] = {}


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
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:  # another worker has it, or it already ran
        return
    job = Job.objects.select_related("workspace", "created_by").get(pk=job_id)

    def progress(done: int, total: int | None = None) -> None:
        fields = {"done": done} if total is None else {"done": done, "total": total}
        Job.objects.filter(pk=job_id).update(**fields)

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


def jobs_requeue_stale(older_than_seconds: int = 600) -> int:
    """Put back jobs left `running` by a worker that died (killed, machine restarted).
    Handlers are idempotent per batch, so running such a job again finishes it correctly."""
    from siyu.core.tasks import run_job

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(
        Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for job_id in stale:
        with transaction.atomic():
            if Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                status=Job.Status.QUEUED
            ):
                transaction.on_commit(lambda job_id=job_id: run_job.enqueue(job_id))
    return len(stale)

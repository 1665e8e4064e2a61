"""Starting an import (a background job, audited in the same transaction) and the job
handlers. The handler first reads the whole file once (to count its rows: a file that cannot
be read fails before anything is written), then imports it in batches of 500 rows, each
batch one transaction with a savepoint per row. Rows that fail go to the error report.

Re-running a job (a worker died) is safe: contacts are matched by their identities and
orders by their ID, so rows already imported are found "unchanged"."""

import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import translation

from siyu.accounts.models import ApiKey, Membership
from siyu.accounts.permissions import Role, has_perm
from siyu.contacts.imports.contacts import ContactImporter
from siyu.contacts.imports.mapping import CONTACTS, ORDERS, mapping_problems
from siyu.contacts.imports.orders import OrderImporter
from siyu.contacts.imports.reading import open_table
from siyu.contacts.imports.rows import Counts, Report
from siyu.contacts.imports.uploads import (
    Upload,
    job_upload_path,
    report_dir,
    upload_claim,
    upload_discard,
    upload_unclaim,
)
from siyu.contacts.models import AttributeDefinition
from siyu.core.audit import Actor, audit
from siyu.core.errors import PermissionDenied, SiyuError
from siyu.core.jobs import job_actor, job_create, job_handler
from siyu.core.models import Job, Workspace

BATCH = 500
JOB_KINDS = {CONTACTS: "contacts.import", ORDERS: "orders.import"}
PERMS = {CONTACTS: "contacts.import", ORDERS: "orders.import"}
KIND_OF_JOB = {v: k for k, v in JOB_KINDS.items()}
SEE_ALL = {Role.OWNER, Role.ADMIN}  # roles that see every import of the workspace


class AlreadyStarted(Exception):
    """The upload was started already (a double click); `job` is that import."""

    def __init__(self, job: Job | None):
        super().__init__("already started")
        self.job = job


def import_jobs(workspace: Workspace, actor: Actor) -> QuerySet[Job]:
    """The imports the actor may follow: all for owners and admins, else their own (an API
    key's own are those it started)."""
    jobs = Job.objects.filter(workspace=workspace, kind__in=list(JOB_KINDS.values()))
    if actor.role in SEE_ALL:
        return jobs
    if actor.user is not None:
        return jobs.filter(created_by=actor.user)
    return jobs.filter(Q(created_by__isnull=True) & Q(actor_label=actor.label))


def job_for_upload(workspace: Workspace, token: str) -> Job | None:
    return (
        Job.objects.filter(workspace=workspace, kind__in=list(JOB_KINDS.values()))
        .filter(params__upload=token)
        .first()
    )


def attributes_of(workspace: Workspace) -> list[AttributeDefinition]:
    return list(AttributeDefinition.objects.filter(workspace=workspace).order_by("id"))


def import_start(
    *,
    workspace: Workspace,
    actor: Actor,
    upload: Upload,
    names: list[str],
    mapping: list[str],
    lang: str = "",
) -> Job:
    """Audit the import and queue its job. Raises SiyuError (422, field `mapping`) when the
    mapping cannot start, AlreadyStarted when this upload was started before."""
    kind = upload.kind
    if not has_perm(actor.role, PERMS[kind]):
        raise PermissionDenied(
            "your role (%(role)s) may not %(permission)s",
            details={"permission": PERMS[kind]},
            params={"role": actor.role, "permission": PERMS[kind]},
        )
    if len(mapping) != len(names):
        raise SiyuError(
            "mapping: one field per column is needed",
            code="invalid",
            status=422,
            details={"field": "mapping"},
        )
    attrs = attributes_of(workspace)
    problems = mapping_problems(kind, mapping, names, attrs)
    if problems:
        with translation.override("en"):
            english = mapping_problems(kind, mapping, names, attrs)
        raise SiyuError(
            "mapping: " + " ".join(english),
            code="invalid",
            status=422,
            details={"field": "mapping", "problems": problems},
        )
    with transaction.atomic():
        if not upload_claim(upload):
            raise AlreadyStarted(job_for_upload(workspace, upload.token))
        try:
            job = _create(workspace, actor, upload, names, mapping, lang)
        except BaseException:
            upload_unclaim(upload)
            raise
    return job


def _create(workspace, actor, upload: Upload, names, mapping, lang) -> Job:
    params = {
        "upload": upload.token,
        "file": f"{workspace.slug}/{upload.token}.{upload.fmt}",
        "filename": upload.filename,
        "size": upload.size,
        "format": upload.fmt,
        "columns": names,
        "mapping": mapping,
        "lang": lang or settings.LANGUAGE_CODE,
        "token": secrets.token_urlsafe(12),
    }
    job = job_create(workspace=workspace, actor=actor, kind=JOB_KINDS[upload.kind], params=params)
    audit(
        workspace=workspace,
        actor=actor,
        action=JOB_KINDS[upload.kind],
        obj=job,
        after={
            "file": upload.filename,
            "size": upload.size,
            "mapping": {n: f for n, f in zip(names, mapping, strict=True) if f},
        },
    )
    return job


@transaction.atomic
def import_report_downloaded(*, workspace: Workspace, actor: Actor, job: Job) -> None:
    """The report holds rows as they were in the file (phones, emails): audited."""
    audit(
        workspace=workspace,
        actor=actor,
        action="import.report_download",
        obj=job,
        after={"kind": job.kind, "failed": (job.result or {}).get("failed", 0)},
    )


def _run(job: Job, progress, importer_class) -> dict[str, Any]:
    with translation.override(job.params.get("lang") or settings.LANGUAGE_CODE):
        try:
            return _import(job, progress, importer_class)
        except SiyuError as exc:  # the job's error, in the language of who started it
            raise RuntimeError(exc.localized()) from exc


def _import(job: Job, progress, importer_class) -> dict[str, Any]:
    kind = KIND_OF_JOB[job.kind]
    # Checked again at run time (a queued job, a job run again after a crash): the role that
    # counts is the one its starter has now, not the one recorded with the job.
    role = _role_now(job)
    if role is None or not has_perm(role, PERMS[kind]):
        raise SiyuError("the role of who started this import may not import any more")
    path = job_upload_path(job)
    if path is None:
        raise SiyuError("the uploaded file is no longer there; upload it again")
    params = job.params
    table = open_table(path)
    if table.names != params["columns"]:
        raise SiyuError("the uploaded file has changed since its columns were chosen")
    progress(0, table.count())  # reads the whole file: a broken file fails before any write
    slug = job.workspace.slug
    report_file = report_dir(slug) / f"{job.pk}-{params['token']}.csv"
    report_file.unlink(missing_ok=True)  # a re-run writes its own report
    report = Report(report_file, table.names)
    importer = importer_class(job.workspace, job_actor(job), table.names, params["mapping"])
    counts = Counts()
    try:
        for batch in _batches(importer, table.rows()):
            with transaction.atomic():
                importer.apply(batch, counts, report)
            progress(counts.rows)
    finally:
        report.close()
    upload_discard(job)
    return {
        **counts.result(),
        "report": f"{slug}/reports/{report_file.name}" if report.written else "",
        "filename": params.get("filename", ""),
        "encoding": table.encoding,
        "delimiter": table.delimiter,
    }


def _role_now(job: Job) -> str | None:
    """The current role of who started the job: a staff member's membership (None once they
    left the workspace or were deactivated), an API key's while it is not revoked; the
    system's (CLI) as recorded."""
    if job.created_by_id is not None:
        return (
            Membership.objects.filter(
                workspace_id=job.workspace_id, staff_id=job.created_by_id, staff__is_active=True
            )
            .values_list("role", flat=True)
            .first()
        )
    if job.actor_label.startswith("api-key:"):
        return (
            ApiKey.objects.filter(
                workspace_id=job.workspace_id,
                prefix=job.actor_label.removeprefix("api-key:"),
                revoked_at__isnull=True,
            )
            .values_list("role", flat=True)
            .first()
        )
    return job.actor_role


def _batches(importer, rows):
    if isinstance(importer, OrderImporter):
        yield from importer.batches(rows, BATCH)
        return
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@job_handler(JOB_KINDS[CONTACTS])
def contacts_import_job(job: Job, progress) -> dict[str, Any]:
    return _run(job, progress, ContactImporter)


@job_handler(JOB_KINDS[ORDERS])
def orders_import_job(job: Job, progress) -> dict[str, Any]:
    return _run(job, progress, OrderImporter)

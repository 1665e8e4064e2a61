"""Deleting import files, which hold phones and emails in clear, on a schedule: run by the
worker every hour (with the export cleanup) and by `siyu cleanup-files`.

- Uploads: never started, deleted after a day; anything left behind (a failed import's file)
  after a week (the rule of `uploads.upload_purge`, now applied to every workspace).
- Error reports: deleted `SIYU_IMPORT_REPORT_RETENTION_HOURS` (default 72) after the import
  finished; the job is marked `report_expired` (audited as `import.report_expire`) so that the
  console says the report has expired and the API answers 410. Report files that no job
  accounts for (a failed import's partial report, a deleted job) go by their age.

Only regular files named like an upload or a report, one level below
`imports/<workspace slug>/` (or its `reports/`), are ever deleted; symbolic links are never
followed. Safe to run from several workers at once."""

import datetime
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from siyu.contacts.imports.jobs import JOB_KINDS
from siyu.contacts.imports.uploads import (
    imports_root,
    job_report_path,
    report_expired,
    uploads_purge_folder,
)
from siyu.core.audit import Actor, audit
from siyu.core.files import unlink_if_present
from siyu.core.models import Job

# What the job handler writes: "<job id>-<token>.csv" in `reports/`.
REPORT_NAME = re.compile(r"^\d+-[A-Za-z0-9_-]+\.csv$")
CLEANUP_ACTOR = "cleanup-imports"

log = logging.getLogger(__name__)


@dataclass
class ImportCleanupResult:
    expired_reports: int = 0  # finished imports past retention, their report now expired
    deleted_reports: int = 0  # report files deleted (of those jobs, or orphans)
    deleted_uploads: int = 0  # upload files past their time

    @property
    def changed(self) -> bool:
        return bool(self.expired_reports or self.deleted_reports or self.deleted_uploads)

    def __str__(self) -> str:
        return (
            f"expired {self.expired_reports} import report(s), deleted {self.deleted_reports} "
            f"report file(s) and {self.deleted_uploads} upload file(s)"
        )


def _expire_report(
    job_id: int, now: datetime.datetime, hours: int, result: ImportCleanupResult
) -> None:
    """Delete one finished import's error report and mark it expired, audited, once."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or report_expired(job):  # another worker got there first
            return
        path = job_report_path(job)  # None unless a regular file inside the imports folder
        deleted = False
        if path is not None and path.parent.name == "reports" and REPORT_NAME.match(path.name):
            deleted = unlink_if_present(path)
        job.result = {
            **(job.result or {}),
            "report_expired": True,
            "report_expired_at": now.isoformat(),
        }
        Job.objects.filter(pk=job.pk).update(result=job.result)
        audit(
            workspace=job.workspace,
            actor=Actor.system(CLEANUP_ACTOR),
            action="import.report_expire",
            obj=job,
            after={
                "kind": job.kind,
                "failed": job.result.get("failed", 0),
                "file_deleted": deleted,
                "retention_hours": hours,
            },
        )
    result.expired_reports += 1
    result.deleted_reports += int(deleted)
    log.info("import job %s: error report expired (file deleted: %s)", job_id, deleted)


def _sweep(now: datetime.datetime, cutoff: datetime.datetime, result: ImportCleanupResult) -> None:
    """Every workspace folder: old uploads, and report files past retention by their age."""
    root = imports_root()
    if root.is_symlink() or not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_symlink() or not folder.is_dir():
            continue
        result.deleted_uploads += uploads_purge_folder(folder, now)
        reports = folder / "reports"
        if reports.is_symlink() or not reports.is_dir():
            continue
        for entry in sorted(reports.iterdir()):
            if not REPORT_NAME.match(entry.name) or entry.is_symlink() or not entry.is_file():
                continue
            if entry.stat().st_mtime < cutoff.timestamp() and unlink_if_present(entry):
                log.info("deleted old import report %s/reports/%s", folder.name, entry.name)
                result.deleted_reports += 1


def imports_cleanup(
    *, retention_hours: int | None = None, now: datetime.datetime | None = None
) -> ImportCleanupResult:
    """Expire the error reports of imports finished more than the retention ago (delete the
    file, mark the job), then delete old uploads and report files no job accounts for."""
    hours = (
        settings.SIYU_IMPORT_REPORT_RETENTION_HOURS if retention_hours is None else retention_hours
    )
    if hours < 1:
        raise ValueError("the import report retention must be at least 1 hour")
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(hours=hours)
    result = ImportCleanupResult()
    due = (
        Job.objects.filter(
            kind__in=list(JOB_KINDS.values()),
            status=Job.Status.DONE,
            finished_at__lt=cutoff,
            result__has_key="report",
        )
        .exclude(result__report="")
        .exclude(result__has_key="report_expired")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for job_id in list(due):
        _expire_report(job_id, now, hours, result)
    _sweep(now, cutoff, result)
    if result.changed:
        log.info("import cleanup: %s", result)
    return result

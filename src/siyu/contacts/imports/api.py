"""Imports API: POST /api/v1/imports (multipart: `file`, `kind`, optional `mapping` JSON),
GET /api/v1/imports (newest first), GET /api/v1/imports/{id} (progress, counts, the first
errors), GET /api/v1/imports/{id}/report (the rows that failed, as CSV; 410 once expired)."""

import datetime
import json

from django.conf import settings
from django.http import FileResponse, HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from siyu.accounts.access import can, require
from siyu.contacts.imports.jobs import (
    KIND_OF_JOB,
    PERMS,
    AlreadyStarted,
    attributes_of,
    import_jobs,
    import_report_downloaded,
    import_start,
)
from siyu.contacts.imports.mapping import KINDS, mapping_from_dict
from siyu.contacts.imports.uploads import (
    job_report_path,
    report_gone,
    upload_discard_unstarted,
    upload_store,
)
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, SiyuError, ValidationError
from siyu.core.models import Job, Workspace
from siyu.core.paging import newest_first_page
from siyu.core.uploads import UploadTooLarge, upload_refused

imports_router = Router(tags=["imports"])
LANGS = {code for code, _name in settings.LANGUAGES}


class ImportErrorOut(Schema):
    row: int
    column: str
    message: str
    reason: str


class ImportOut(Schema):
    id: int
    kind: str
    status: str
    done: int
    total: int
    percent: int
    filename: str
    created_at: datetime.datetime
    finished_at: datetime.datetime | None
    created: int
    updated: int
    unchanged: int
    failed: int
    contacts_created: int
    tags_created: int
    errors: list[ImportErrorOut]
    report_url: str | None
    report_expired: bool
    error: str


class ImportList(Schema):
    items: list[ImportOut]
    next: str | None


def import_out(job: Job) -> dict:
    result = job.result or {}
    gone = report_gone(job)
    has_report = job.status == Job.Status.DONE and bool(result.get("report")) and not gone
    return {
        "id": job.pk,
        "kind": KIND_OF_JOB.get(job.kind, job.kind),
        "status": job.status,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "filename": job.params.get("filename", ""),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        **{
            k: int(result.get(k, 0))
            for k in (
                "created",
                "updated",
                "unchanged",
                "failed",
                "contacts_created",
                "tags_created",
            )
        },
        "errors": [
            {
                "row": e.get("row", 0),
                "column": e.get("column", ""),
                "message": e.get("message", ""),
                "reason": e.get("reason", ""),
            }
            for e in result.get("errors", [])
        ],
        "report_url": f"/api/v1/imports/{job.pk}/report" if has_report else None,
        "report_expired": gone,
        "error": job.error,
    }


def _may_import(actor: Actor) -> None:
    if not any(can(actor, perm) for perm in PERMS.values()):
        require(actor, PERMS["contacts"])


def _job(workspace: Workspace, actor: Actor, job_id: int) -> Job:
    _may_import(actor)
    job = import_jobs(workspace, actor).filter(pk=job_id).first()
    if job is None:
        raise NotFound("import not found")
    return job


@imports_router.post("", response={202: ImportOut}, summary="Import contacts or orders")
def create_import(
    request: HttpRequest,
    file: File[UploadedFile],
    kind: Form[str],
    mapping: Form[str] = "",
    lang: Form[str] = "",
):
    """Upload a CSV (UTF-8, UTF-8 with BOM, UTF-16 or GBK) or XLSX file and start importing
    it; 202 with the import, to be followed with `GET /imports/{id}`. Columns are mapped
    automatically from their headers (Chinese or English); `mapping` is a JSON object
    `{"column header": "field"}` that overrides it (`""` or `null`: not imported). A file
    larger than the limit answers 413 `file_too_large`, before it is stored anywhere."""
    if upload_refused(request):  # (a refused upload usually stops at the file's validation)
        raise UploadTooLarge("file")
    if kind not in KINDS:
        raise ValidationError(
            "kind", "expected one of %(choices)s", params={"choices": ", ".join(KINDS)}
        )
    require(request.actor, PERMS[kind])
    workspace, actor = request.workspace, request.actor
    given = {}
    if mapping.strip():
        try:
            given = json.loads(mapping)
        except ValueError as exc:
            raise ValidationError("mapping", "not valid JSON") from exc
        if not isinstance(given, dict):
            raise ValidationError("mapping", 'expected a JSON object {"column header": "field"}')
    if lang and lang not in LANGS:
        raise ValidationError(
            "lang", "expected one of %(choices)s", params={"choices": ", ".join(sorted(LANGS))}
        )
    upload, table = upload_store(
        workspace=workspace, actor=actor, kind=kind, name=file.name, chunks=file.chunks()
    )
    try:
        columns = mapping_from_dict(kind, table.names, given, attributes_of(workspace))
        job = import_start(
            workspace=workspace,
            actor=actor,
            upload=upload,
            names=table.names,
            mapping=columns,
            lang=lang or settings.LANGUAGE_CODE,
        )
    except (SiyuError, AlreadyStarted):
        upload_discard_unstarted(upload)
        raise
    job.refresh_from_db()
    return Status(202, import_out(job))


@imports_router.get("", response=ImportList, summary="Recent imports")
def list_imports(request: HttpRequest, cursor: str = "", limit: int = 50):
    """Newest first. Owner and admin keys see every import; others the imports they started."""
    _may_import(request.actor)
    limit = max(1, min(limit, 200))
    qs = import_jobs(request.workspace, request.actor)
    rows, next_cursor = newest_first_page(qs, "created_at", cursor, limit)
    return {"items": [import_out(j) for j in rows], "next": next_cursor}


@imports_router.get("/{job_id}", response=ImportOut, summary="An import's progress and result")
def get_import(request: HttpRequest, job_id: int):
    return import_out(_job(request.workspace, request.actor, job_id))


@imports_router.get("/{job_id}/report", summary="The rows that were not imported (CSV)")
def import_report(request: HttpRequest, job_id: int):
    """The failed rows as they were in the file, with `行号` (row number, the header is row
    1) and `错误原因` (the reason) added; UTF-8 with a BOM. 404 when every row was imported,
    410 `report_expired` once the report was deleted (SIYU_IMPORT_REPORT_RETENTION_HOURS after
    the import finished)."""
    workspace, actor = request.workspace, request.actor
    job = _job(workspace, actor, job_id)
    if report_gone(job):
        raise SiyuError(
            "the error report has expired: reports are deleted %(hours)s hours after the "
            "import finished",
            code="report_expired",
            status=410,
            params={"hours": settings.SIYU_IMPORT_REPORT_RETENTION_HOURS},
        )
    path = job_report_path(job) if job.status == Job.Status.DONE else None
    if path is None:
        raise NotFound("this import has no error report")
    import_report_downloaded(workspace=workspace, actor=actor, job=job)
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - closed by the response
        as_attachment=True,
        filename=f"import-{job.pk}-errors.csv",
        content_type="text/csv; charset=utf-8",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response

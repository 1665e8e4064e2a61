"""Importing contacts and orders: upload (step 1), choose what each column is with a preview
of the first rows (step 2), follow the job and download the error report (step 3), and the
list of past imports. Starting an import and downloading a report are audited. An error
report past its retention (deleted by imports/cleanup.py) is shown as expired, and its
download answers 410 Gone with the same message."""

import csv
import io
import zoneinfo

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.encoding import escape_uri_path
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from siyu.accounts.access import can, require
from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import is_partial, render_ws
from siyu.contacts.imports.contacts import ContactImporter
from siyu.contacts.imports.jobs import (
    KIND_OF_JOB,
    PERMS,
    AlreadyStarted,
    attributes_of,
    import_jobs,
    import_report_downloaded,
    import_start,
    job_for_upload,
)
from siyu.contacts.imports.mapping import (
    CONTACTS,
    KINDS,
    ORDERS,
    auto_map,
    field_catalogue,
    mapping_problems,
)
from siyu.contacts.imports.orders import OrderImporter
from siyu.contacts.imports.reading import ImportFileError, Table, column_letter
from siyu.contacts.imports.rows import RowProblem
from siyu.contacts.imports.uploads import (
    Upload,
    job_report_path,
    report_gone,
    upload_get,
    upload_store,
)
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Job, Workspace
from siyu.core.uploads import UploadTooLarge, limit_mb, upload_refused

PREVIEW_ROWS = 10
HISTORY = 50
TEMPLATES = {
    CONTACTS: ["姓名", "手机号", "邮箱", "性别", "生日", "省份", "城市", "来源", "标签",
               "归属顾问"],
    ORDERS: ["订单号", "手机号", "客户姓名", "实付金额", "下单时间", "渠道", "商品名称", "SKU",
             "数量", "单价"],
}  # fmt: skip


def _kinds(actor: Actor) -> list[str]:
    """The kinds of import the actor may start; PermissionDenied (403 page) when none."""
    kinds = [k for k in KINDS if can(actor, PERMS[k])]
    if not kinds:
        require(actor, PERMS[CONTACTS])
    return kinds


def _job(workspace: Workspace, actor: Actor, job_id: int) -> Job:
    job = import_jobs(workspace, actor).filter(pk=job_id).first()
    if job is None:
        raise Http404
    return job


def _labels() -> dict[str, str]:
    return {CONTACTS: _("Contacts"), ORDERS: _("Orders")}


# --- the list --------------------------------------------------------------------------------


@workspace_view("dashboard.view")
@require_GET
def import_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    _kinds(actor)
    jobs = list(
        import_jobs(workspace, actor).select_related("created_by").order_by("-id")[:HISTORY]
    )
    labels = _labels()
    for job in jobs:
        job.import_kind = labels.get(KIND_OF_JOB.get(job.kind, ""), job.kind)
        job.report_gone = report_gone(job)
    return render_ws(request, "console/imports/list.html", {"jobs": jobs})


# --- step 1: upload --------------------------------------------------------------------------


@workspace_view("dashboard.view")
@require_http_methods(["GET", "POST"])
def import_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    kinds = _kinds(actor)
    kind = request.POST.get("kind") or request.GET.get("kind") or kinds[0]
    error = ""
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if kind not in kinds:
                require(actor, PERMS.get(kind, PERMS[CONTACTS]))
            if upload_refused(request):  # stopped while it arrived: nothing was written
                raise UploadTooLarge("file")
            if upload is None:
                raise ImportFileError("choose a file to import")
            stored, _table = upload_store(
                workspace=workspace,
                actor=actor,
                kind=kind,
                name=upload.name,
                chunks=upload.chunks(),
            )
        except SiyuError as exc:
            if exc.status == 403:
                raise
            error, status = error_text(exc), exc.status
        else:
            return redirect("console:import_mapping", workspace.slug, stored.token)
    context = {
        "kinds": [(k, _labels()[k]) for k in kinds],
        "kind": kind if kind in kinds else kinds[0],
        "error": error,
        "max_mb": _max_mb(),
    }
    return render_ws(request, "console/imports/new.html", context, status=status)


def _max_mb() -> str:
    return limit_mb(settings.SIYU_IMPORT_MAX_BYTES)


@workspace_view("dashboard.view")
@require_GET
def import_template(
    request: HttpRequest, workspace: Workspace, actor: Actor, kind: str
) -> HttpResponse:
    """An empty file with the Chinese headers (and the custom attributes for contacts)."""
    _kinds(actor)
    if kind not in TEMPLATES:
        raise Http404
    header = list(TEMPLATES[kind])
    if kind == CONTACTS:
        header += [d.label for d in attributes_of(workspace)]
    out = io.StringIO()
    csv.writer(out).writerow(header)
    name = "客户导入模板.csv" if kind == CONTACTS else "订单导入模板.csv"
    response = HttpResponse(
        ("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f"attachment; filename*=utf-8''{escape_uri_path(name)}"
    return response


# --- step 2: mapping and preview --------------------------------------------------------------


def _posted_mapping(request: HttpRequest, width: int) -> list[str]:
    return [request.POST.get(f"col-{i}", "").strip() for i in range(width)]


def _preview(
    workspace: Workspace, actor: Actor, upload: Upload, table: Table, mapping: list[str]
) -> list[dict]:
    """The first rows with what checking them alone says (the database is not consulted:
    conflicts with existing contacts and orders show up only in the import)."""
    rows = table.preview(PREVIEW_ROWS)
    checks: dict[int, str] = {}
    known = {k for k, _label in field_catalogue(upload.kind, attributes_of(workspace))}
    mapping = [m if m in known else "" for m in mapping]
    if upload.kind == CONTACTS:
        importer = ContactImporter(workspace, actor, table.names, mapping)
        for row_no, cells in rows:
            try:
                importer.parse(row_no, cells)
            except RowProblem as problem:
                checks[row_no] = _reason(problem)
    elif "external_id" in mapping:
        importer = OrderImporter(workspace, actor, table.names, mapping)
        for batch in importer.batches(iter(rows), PREVIEW_ROWS):
            for group in batch:
                try:
                    importer.parse(group)
                except RowProblem as problem:
                    for row_no, _cells in group:
                        checks[row_no] = _reason(problem)
    return [{"row": n, "cells": cells, "problem": checks.get(n, "")} for n, cells in rows]


def _reason(problem: RowProblem) -> str:
    reason = problem.localized()
    if problem.column:
        return _("%(column)s: %(reason)s") % {"column": problem.column, "reason": reason}
    return reason


def _mapping_context(
    workspace: Workspace, actor: Actor, upload: Upload, table: Table, mapping: list[str]
) -> dict:
    attrs = attributes_of(workspace)
    samples = [[] for _ in table.names]
    preview = _preview(workspace, actor, upload, table, mapping)
    for row in preview[:3]:
        for i, value in enumerate(row["cells"]):
            if value:
                samples[i].append(value)
    columns = [
        {
            "index": i,
            "name": name,
            "letter": column_letter(i),
            "field": mapping[i],
            "samples": samples[i],
        }
        for i, name in enumerate(table.names)
    ]
    fields = field_catalogue(upload.kind, attrs)
    labels = dict(fields)
    mapped = [c for c in columns if c["field"] in labels]
    for c in mapped:
        c["label"] = labels[c["field"]]
    for row in preview:
        row["mapped"] = [row["cells"][c["index"]] for c in mapped]
    return {
        "upload": upload,
        "kind_label": _labels()[upload.kind],
        "table": table,
        "columns": columns,
        "fields": fields,
        "preview": preview,
        "problems": mapping_problems(upload.kind, mapping, table.names, attrs),
        "mapped": mapped,
        "encoding_label": _encoding_label(table),
    }


def _encoding_label(table: Table) -> str:
    if table.fmt == "xlsx":
        return "Excel (.xlsx)"
    names = {
        "utf-8": "UTF-8",
        "utf-8-sig": "UTF-8 (BOM)",
        "utf-16": "UTF-16",
        "gb18030": "GBK / GB18030",
    }
    delimiters = {",": _("comma"), "\t": _("tab"), ";": _("semicolon")}
    return f"CSV · {names.get(table.encoding, table.encoding)} · {delimiters[table.delimiter]}"


@workspace_view("dashboard.view")
@require_http_methods(["GET", "POST"])
def import_mapping(
    request: HttpRequest, workspace: Workspace, actor: Actor, token: str
) -> HttpResponse:
    _kinds(actor)
    upload = upload_get(workspace, actor, token)
    if upload is None:
        started = job_for_upload(workspace, token)  # a second click on "start", a reload
        if started is not None and import_jobs(workspace, actor).filter(pk=started.pk).exists():
            return redirect("console:import_status", workspace.slug, started.pk)
        raise Http404
    require(actor, PERMS[upload.kind])
    try:
        table = upload.table()
    except ImportFileError as exc:  # pragma: no cover - it was read when uploaded
        raise Http404 from exc
    if request.method == "GET":
        mapping = auto_map(upload.kind, table.names, attributes_of(workspace))
    else:
        mapping = _posted_mapping(request, len(table.names))
    context = _mapping_context(workspace, actor, upload, table, mapping)
    if request.method == "POST" and request.POST.get("action") == "start":
        try:
            job = import_start(
                workspace=workspace,
                actor=actor,
                upload=upload,
                names=table.names,
                mapping=mapping,
                lang=get_language() or "",
            )
        except AlreadyStarted as exc:
            if exc.job is None:  # the other click's job is not committed yet: the list has it
                return redirect("console:imports", workspace.slug)
            return redirect("console:import_status", workspace.slug, exc.job.pk)
        except SiyuError as exc:
            if exc.status == 403:
                raise
            context["problems"] = exc.details.get("problems") or [error_text(exc)]
            return render_ws(request, "console/imports/mapping.html", context, status=422)
        return redirect("console:import_status", workspace.slug, job.pk)
    if request.method == "POST" and is_partial(request, "import-preview"):
        return render_ws(request, "console/imports/_preview.html", context)
    return render_ws(request, "console/imports/mapping.html", context)


# --- step 3: progress, result, report ----------------------------------------------------------


@workspace_view("dashboard.view")
@require_GET
def import_status(
    request: HttpRequest, workspace: Workspace, actor: Actor, job_id: int
) -> HttpResponse:
    _kinds(actor)
    job = _job(workspace, actor, job_id)
    context = _status_context(job)
    if is_partial(request, f"import-{job.pk}"):
        return render_ws(request, "console/imports/_job.html", context)
    return render_ws(request, "console/imports/status.html", context)


def _status_context(job: Job) -> dict:
    return {
        "job": job,
        "kind_label": _labels().get(KIND_OF_JOB.get(job.kind, ""), ""),
        "report_gone": report_gone(job),
        "report_hours": settings.SIYU_IMPORT_REPORT_RETENTION_HOURS,
    }


@workspace_view("dashboard.view")
@require_GET
def import_report(
    request: HttpRequest, workspace: Workspace, actor: Actor, job_id: int
) -> HttpResponse:
    """The error report; 410 with the import's page saying so once it has expired."""
    _kinds(actor)
    job = _job(workspace, actor, job_id)
    if report_gone(job):  # deleted after its retention (or gone from the disk)
        return render_ws(request, "console/imports/status.html", _status_context(job), status=410)
    path = job_report_path(job) if job.status == Job.Status.DONE else None
    if path is None:
        raise Http404
    import_report_downloaded(workspace=workspace, actor=actor, job=job)
    stamp = job.created_at.astimezone(zoneinfo.ZoneInfo(workspace.timezone))
    filename = f"导入错误报告-{job.pk}-{stamp:%Y%m%d-%H%M}.csv"
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - closed by the response
        as_attachment=True,
        filename=filename,
        content_type="text/csv; charset=utf-8",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response

"""Export the contacts matching a list filter to CSV or XLSX, as a background job (audited).

`contacts_export_start` records the export in the audit log and creates the job; the job
handler writes the file in id-ordered batches of 5,000 under
`SIYU_HOME/exports/<workspace slug>/`, named by job id plus a random token. Phones and emails
are masked unless the export asked for them in clear AND the creator's role may reveal PII.

The files hold customer data, so `exports_cleanup` (run by the worker every hour and by
`siyu cleanup-files`) deletes them `SIYU_EXPORT_RETENTION_HOURS` after the export finished,
marks the job expired (audited as `export.expire`) and removes stale `.part` files."""

import csv
import datetime
import logging
import os
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from siyu.accounts.permissions import has_perm
from siyu.contacts.actions.identity import identity_clear_value
from siyu.contacts.models import (
    AttributeDefinition,
    Contact,
    ContactTag,
    Gender,
    Identity,
    IdentityKind,
    Source,
)
from siyu.contacts.normalize import looks_like_pii, mask
from siyu.contacts.queries import ContactFilter, visible_contacts
from siyu.core.audit import Actor, audit
from siyu.core.files import unlink_if_present
from siyu.core.jobs import job_actor, job_create, job_handler
from siyu.core.models import Job, Workspace

KIND = "contacts.export"
FORMATS = ("csv", "xlsx")
BATCH = 5000
HEADERS = [
    "姓名",
    "性别",
    "生日",
    "省份",
    "城市",
    "来源",
    "归属顾问",
    "手机号",
    "邮箱",
    "标签",
    "首次出现",
    "最近活跃",
    "创建时间",
]
GENDERS = {Gender.UNKNOWN: "未知", Gender.FEMALE: "女", Gender.MALE: "男"}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What the job handler writes: "<job id>-<token>.<format>", and "….part" while writing.
_EXPORT_NAME = re.compile(r"^(\d+)-[A-Za-z0-9_-]+\.(?:csv|xlsx)(\.part)?$")
PART_MAX_AGE = datetime.timedelta(days=1)
CLEANUP_ACTOR = "cleanup-exports"

log = logging.getLogger(__name__)


def exports_root() -> Path:
    return Path(settings.SIYU_HOME) / "exports"


def export_dir(workspace: Workspace) -> Path:
    return exports_root() / workspace.slug


def export_expired(job: Job) -> bool:
    """The cleanup has deleted this job's file (or found it gone)."""
    return bool((job.result or {}).get("expired"))


def export_path(job: Job) -> Path | None:
    """The finished file of an export job, if it is (still) there, not expired and inside the
    exports directory."""
    name = (job.result or {}).get("file", "")
    if not name or export_expired(job):
        return None
    root = exports_root().resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def filter_summary(flt: ContactFilter) -> dict[str, Any]:
    """The filter as the audit log records it: a searched phone or email only masked."""
    q = flt.q
    if q and looks_like_pii(q):
        q = mask(IdentityKind.EMAIL, q) if "@" in q else mask(IdentityKind.PHONE, q.strip())
    return {
        "q": q,
        "tag_id": flt.tag_id,
        "source": flt.source,
        "owner_id": flt.owner_id,
        "segment_id": flt.segment_id,
    }


@transaction.atomic
def contacts_export_start(
    *, workspace: Workspace, actor: Actor, flt: ContactFilter, fmt: str, with_pii: bool
) -> Job:
    """Audit the export and queue the job. Clear PII only if the actor may reveal it."""
    with_pii = bool(with_pii) and has_perm(actor.role, "pii.reveal")
    params = {
        "filter": flt.sealed(),
        "format": fmt,
        "with_pii": with_pii,
        "token": secrets.token_urlsafe(12),
    }
    job = job_create(workspace=workspace, actor=actor, kind=KIND, params=params)
    audit(
        workspace=workspace,
        actor=actor,
        action="contacts.export",
        obj=job,
        after={"filter": filter_summary(flt), "format": fmt, "with_pii": with_pii},
    )
    return job


@transaction.atomic
def contacts_export_downloaded(*, workspace: Workspace, actor: Actor, job: Job) -> None:
    audit(
        workspace=workspace,
        actor=actor,
        action="export.download",
        obj=job,
        after={
            "format": job.params.get("format"),
            "rows": (job.result or {}).get("rows", 0),
            "with_pii": bool(job.params.get("with_pii")),
        },
    )


def _safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _row(
    contact: Contact, attrs: list[AttributeDefinition], tz: zoneinfo.ZoneInfo, clear: bool
) -> list[Any]:
    def when(dt: datetime.datetime | None) -> str:
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else ""

    def first(kind: str) -> str:
        for identity in contact.identities.all():
            if identity.kind == kind:
                value = identity_clear_value(identity)
                return value if clear else mask(kind, value)
        return ""

    try:
        source = str(Source(contact.source).label) if contact.source else ""
    except ValueError:
        source = contact.source
    tags = "、".join(ct.tag.name for ct in contact.contact_tags.all())
    row: list[Any] = [
        contact.name,
        GENDERS.get(contact.gender, contact.gender),
        contact.birthday.isoformat() if contact.birthday else "",
        contact.province,
        contact.city,
        source,
        contact.owner.display_name if contact.owner else "",
        first(IdentityKind.PHONE),
        first(IdentityKind.EMAIL),
        tags,
        when(contact.first_seen_at),
        when(contact.last_seen_at),
        when(contact.created_at),
    ]
    for definition in attrs:
        value = contact.attributes.get(definition.key)
        if isinstance(value, bool):
            value = "是" if value else "否"
        elif value is None:
            value = ""
        elif isinstance(value, list):
            value = "、".join(map(str, value))
        row.append(value)
    return [_safe(v) for v in row]


class _CsvWriter:
    def __init__(self, path: Path):
        # UTF-8 with BOM: Excel then reads the Chinese text correctly.
        self.file = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.file)

    def append(self, row: list[Any]) -> None:
        self.writer.writerow(row)

    def close(self) -> None:
        self.file.close()


class _XlsxWriter:
    def __init__(self, path: Path):
        from openpyxl import Workbook

        self.path = path
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("客户")

    def append(self, row: list[Any]) -> None:
        self.sheet.append(row)

    def close(self) -> None:
        self.book.save(self.path)


@job_handler(KIND)
def export_job(job: Job, progress) -> dict:
    """Write the file in id-ordered batches; a re-run rewrites the same file from scratch."""
    actor = job_actor(job)
    workspace = job.workspace
    fmt = job.params.get("format", "csv")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    # Checked again at run time: a role changed since the export was asked for counts.
    clear = bool(job.params.get("with_pii")) and has_perm(job.actor_role, "pii.reveal")
    flt = ContactFilter.unsealed(job.params["filter"])
    qs = flt.apply(workspace, visible_contacts(workspace, actor))
    total = qs.count()
    progress(0, total)
    attrs = list(AttributeDefinition.objects.filter(workspace=workspace).order_by("id"))
    tz = zoneinfo.ZoneInfo(workspace.timezone)

    folder = export_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{job.pk}-{job.params.get('token') or secrets.token_urlsafe(12)}.{fmt}"
    final = folder / name
    partial = folder / (name + ".part")
    writer = _CsvWriter(partial) if fmt == "csv" else _XlsxWriter(partial)
    done = last_id = 0
    try:
        writer.append(HEADERS + [d.label for d in attrs])
        while True:
            ids = list(
                qs.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:BATCH]
            )
            if not ids:
                break
            contacts = (
                Contact.objects.filter(workspace=workspace, pk__in=ids)
                .order_by("pk")
                .select_related("owner")
                .prefetch_related(
                    Prefetch(
                        "identities",
                        queryset=Identity.objects.filter(
                            kind__in=[IdentityKind.PHONE, IdentityKind.EMAIL]
                        ).order_by("id"),
                    ),
                    Prefetch(
                        "contact_tags",
                        queryset=ContactTag.objects.select_related("tag").order_by(
                            "tag__group_id", "tag__sort", "tag_id"
                        ),
                    ),
                )
            )
            for contact in contacts:
                writer.append(_row(contact, attrs, tz, clear))
            done += len(ids)
            last_id = ids[-1]
            progress(done)
    finally:
        writer.close()
    os.replace(partial, final)
    return {
        "file": f"{workspace.slug}/{name}",
        "rows": done,
        "format": fmt,
        "with_pii": clear,
    }


# --- retention ---------------------------------------------------------------------------------


@dataclass
class CleanupResult:
    expired_jobs: int = 0  # finished exports past retention, now marked expired
    deleted_files: int = 0  # finished export files deleted (of those jobs, or orphans)
    deleted_parts: int = 0  # `.part` files left by an interrupted export

    @property
    def changed(self) -> bool:
        return bool(self.expired_jobs or self.deleted_files or self.deleted_parts)

    def __str__(self) -> str:
        return (
            f"expired {self.expired_jobs} export(s), deleted {self.deleted_files} file(s) "
            f"and {self.deleted_parts} stale partial file(s)"
        )


def _expire_job(job_id: int, now: datetime.datetime, hours: int, result: CleanupResult) -> None:
    """Delete one finished export's file and mark the job expired, audited, once."""
    actor = Actor.system(CLEANUP_ACTOR)
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or export_expired(job):  # another worker got there first
            return
        path = export_path(job)  # None unless a regular file inside the exports directory
        deleted = False
        if path is not None and _EXPORT_NAME.match(path.name):
            deleted = unlink_if_present(path)
        job.result = {**(job.result or {}), "expired": True, "expired_at": now.isoformat()}
        Job.objects.filter(pk=job.pk).update(result=job.result)
        audit(
            workspace=job.workspace,
            actor=actor,
            action="export.expire",
            obj=job,
            after={
                "format": job.params.get("format"),
                "rows": job.result.get("rows", 0),
                "file_deleted": deleted,
                "retention_hours": hours,
            },
        )
    result.expired_jobs += 1
    result.deleted_files += int(deleted)
    log.info("export job %s expired (file deleted: %s)", job.pk, deleted)


def _sweep_files(now: datetime.datetime, cutoff: datetime.datetime, result: CleanupResult) -> None:
    """Files the job rows do not account for: finished files past retention whose job is gone,
    and `.part` files older than a day. Only regular files named like an export, one level
    below `exports/<slug>/`; symbolic links (to files or folders) are never followed."""
    root = exports_root()
    if not root.is_dir():
        return
    part_cutoff = (now - PART_MAX_AGE).timestamp()
    file_cutoff = cutoff.timestamp()
    for folder in sorted(root.iterdir()):
        if folder.is_symlink() or not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            match = _EXPORT_NAME.match(entry.name)
            if not match or entry.is_symlink() or not entry.is_file():
                continue
            is_part = bool(match.group(2))
            if entry.stat().st_mtime >= (part_cutoff if is_part else file_cutoff):
                continue
            if unlink_if_present(entry):
                log.info("deleted old export file %s/%s", folder.name, entry.name)
                if is_part:
                    result.deleted_parts += 1
                else:
                    result.deleted_files += 1


def exports_cleanup(
    *, retention_hours: int | None = None, now: datetime.datetime | None = None
) -> CleanupResult:
    """Delete finished export files older than the retention (by the job's finish time, then
    by file age for files without a job), mark their jobs expired so the console says so, and
    delete `.part` files older than a day. Safe to run from several workers at once."""
    hours = settings.SIYU_EXPORT_RETENTION_HOURS if retention_hours is None else retention_hours
    if hours < 1:
        raise ValueError("the export retention must be at least 1 hour")
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(hours=hours)
    result = CleanupResult()
    due = (
        Job.objects.filter(kind=KIND, status=Job.Status.DONE, finished_at__lt=cutoff)
        .exclude(result__has_key="expired")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for job_id in list(due):
        _expire_job(job_id, now, hours, result)
    _sweep_files(now, cutoff, result)
    if result.changed:
        log.info("export cleanup: %s", result)
    return result

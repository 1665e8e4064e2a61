"""Uploaded files waiting to be imported, under SIYU_HOME/imports/<workspace slug>/.

An upload is two files named by a random token: the data (`<token>.csv` or `.xlsx`) and its
description (`<token>.json`: kind, original name, who uploaded it). Starting the import
renames the description to `<token>.started` (atomic: a double click starts one job); the
job deletes the data when it is done, since the file holds phones and emails in clear.
Uploads never started are deleted after a day, anything left behind after a week. Error
reports live in `reports/` beside them, deleted SIYU_IMPORT_REPORT_RETENTION_HOURS after the
import finished (see cleanup.py, run by the worker every hour)."""

import datetime
import json
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from siyu.contacts.imports.mapping import KINDS
from siyu.contacts.imports.reading import Table, open_table, sniff_format
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.core.models import Job, Workspace
from siyu.core.uploads import UploadTooLarge

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# The files of an upload: its data, its description, the description once started, and the
# data while it is being written.
UPLOAD_NAME = re.compile(r"^([A-Za-z0-9_-]{16,64})\.(csv|xlsx|json|started|part)$")
UNSTARTED_TTL = datetime.timedelta(days=1)
LEFTOVER_TTL = datetime.timedelta(days=7)


@dataclass
class Upload:
    token: str
    kind: str
    filename: str
    size: int
    fmt: str
    staff_id: int | None
    actor_label: str
    created_at: str
    workspace_slug: str

    @property
    def path(self) -> Path:
        return upload_dir(self.workspace_slug) / f"{self.token}.{self.fmt}"

    def table(self) -> Table:
        return open_table(self.path)


def imports_root() -> Path:
    return Path(settings.SIYU_HOME) / "imports"


def upload_dir(slug: str) -> Path:
    return imports_root() / slug


def report_dir(slug: str) -> Path:
    return imports_root() / slug / "reports"


def clean_filename(name: str) -> str:
    name = os.path.basename(str(name or "").replace("\\", "/"))
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or "upload"


def _owned_by(upload: Upload, actor: Actor) -> bool:
    if actor.user is not None:
        return upload.staff_id == actor.user.pk
    return upload.staff_id is None and upload.actor_label == actor.label


def upload_store(
    *, workspace: Workspace, actor: Actor, kind: str, name: str, chunks: Iterable[bytes]
) -> tuple[Upload, Table]:
    """Save an uploaded file and check that it reads as a table. Raises ValidationError
    (field `kind`), ImportFileError or UploadTooLarge (field `file`); nothing is kept then."""
    if kind not in KINDS:
        raise ValidationError(
            "kind", "expected one of %(choices)s", params={"choices": "contacts, orders"}
        )
    upload_purge(workspace)
    folder = upload_dir(workspace.slug)
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    partial = folder / f"{token}.part"
    limit = settings.SIYU_IMPORT_MAX_BYTES
    size = 0
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:  # LimitedUploadHandler stops most such uploads earlier
                    raise UploadTooLarge("file", limit)
                out.write(chunk)
        fmt = sniff_format(partial)
        upload = Upload(
            token=token,
            kind=kind,
            filename=clean_filename(name),
            size=size,
            fmt=fmt,
            staff_id=actor.user.pk if actor.user is not None else None,
            actor_label=actor.label,
            created_at=timezone.now().isoformat(),
            workspace_slug=workspace.slug,
        )
        os.replace(partial, upload.path)
        table = open_table(upload.path)
    except BaseException:
        for leftover in (partial, folder / f"{token}.csv", folder / f"{token}.xlsx"):
            leftover.unlink(missing_ok=True)
        raise
    (folder / f"{token}.json").write_text(json.dumps(asdict(upload), ensure_ascii=False))
    return upload, table


def _load(path: Path) -> Upload | None:
    try:
        return Upload(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def upload_get(workspace: Workspace, actor: Actor, token: str) -> Upload | None:
    """The actor's own upload, not yet started, or None."""
    if not TOKEN.match(token or ""):
        return None
    upload = _load(upload_dir(workspace.slug) / f"{token}.json")
    if upload is None or upload.workspace_slug != workspace.slug or not _owned_by(upload, actor):
        return None
    if not upload.path.is_file():
        return None
    return upload


def upload_claim(upload: Upload) -> bool:
    """Mark the upload started; False if it already was (a second click, a second tab)."""
    folder = upload_dir(upload.workspace_slug)
    try:
        os.rename(folder / f"{upload.token}.json", folder / f"{upload.token}.started")
    except FileNotFoundError:
        return False
    return True


def upload_unclaim(upload: Upload) -> None:
    """Undo a claim whose job was not created after all (its transaction rolled back)."""
    folder = upload_dir(upload.workspace_slug)
    try:
        os.rename(folder / f"{upload.token}.started", folder / f"{upload.token}.json")
    except FileNotFoundError:
        pass


def job_upload_path(job: Job) -> Path | None:
    """The data file an import job reads, if it is still there, inside the imports folder."""
    name = (job.params or {}).get("file", "")
    return _inside(imports_root(), name)


def job_report_path(job: Job) -> Path | None:
    """The error report of a finished import job, if there is one and it has not expired."""
    if report_expired(job):
        return None
    name = (job.result or {}).get("report", "")
    return _inside(imports_root(), name)


def report_expired(job: Job) -> bool:
    """The cleanup deleted this job's error report (imports/cleanup.py)."""
    return bool((job.result or {}).get("report_expired"))


def report_gone(job: Job) -> bool:
    """A finished import that had an error report which is no longer there to download
    (expired, or gone from the disk)."""
    has_report = job.status == Job.Status.DONE and bool((job.result or {}).get("report"))
    return has_report and job_report_path(job) is None


def _inside(root: Path, name: str) -> Path | None:
    if not name:
        return None
    root = root.resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def upload_discard(job: Job) -> None:
    path = job_upload_path(job)
    if path is not None:
        path.unlink(missing_ok=True)


def upload_discard_unstarted(upload: Upload) -> None:
    """Forget an upload whose import could not start (a bad mapping through the API)."""
    folder = upload_dir(upload.workspace_slug)
    if (folder / f"{upload.token}.json").exists():
        (folder / f"{upload.token}.json").unlink(missing_ok=True)
        upload.path.unlink(missing_ok=True)


def upload_purge(workspace: Workspace) -> int:
    """Delete the workspace's uploads never started after a day and any upload left after a
    week (a failed import's file). Run when someone uploads; the worker runs
    `uploads_purge_folder` for every workspace every hour (imports/cleanup.py)."""
    return uploads_purge_folder(upload_dir(workspace.slug))


def uploads_purge_folder(folder: Path, now: datetime.datetime | None = None) -> int:
    """The purge of one workspace's folder. Only regular files named like an upload are
    deleted; symbolic links are never followed."""
    if folder.is_symlink() or not folder.is_dir():
        return 0
    now_ts = (now or timezone.now()).timestamp()
    removed = 0
    for path in sorted(folder.iterdir()):
        match = UPLOAD_NAME.match(path.name)
        if not match or path.is_symlink() or not path.is_file():
            continue
        token, suffix = match.groups()
        unstarted = suffix == "part" or (folder / f"{token}.json").exists()
        ttl = UNSTARTED_TTL if unstarted else LEFTOVER_TTL
        if now_ts - path.stat().st_mtime > ttl.total_seconds():
            path.unlink(missing_ok=True)
            removed += 1
    return removed

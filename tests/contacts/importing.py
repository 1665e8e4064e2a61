"""Helpers for the import tests: files in every encoding and format, and running an import
through the API with the job executed on commit."""

import csv
import io
import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.core.models import Job


@pytest.fixture(autouse=True)
def fresh_imports():
    """Every test starts with no uploads or reports (SIYU_HOME lives as long as the process)."""
    shutil.rmtree(imports_root(), ignore_errors=True)
    yield


def imports_root() -> Path:
    return Path(settings.SIYU_HOME) / "imports"


def uploads_left() -> list[str]:
    """The upload files still on disk (reports aside)."""
    return sorted(
        p.name for p in imports_root().rglob("*") if p.is_file() and "reports" not in p.parts
    )


def csv_bytes(rows: list[list], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def post_import(client, kind: str, content: bytes, name: str = "data.csv", **form):
    """POST /api/v1/imports as multipart with an ApiClient (tests/conftest.py)."""
    data = {"kind": kind, "file": SimpleUploadedFile(name, content), **form}
    if isinstance(data.get("mapping"), dict):
        data["mapping"] = json.dumps(data["mapping"], ensure_ascii=False)
    return client.client.post("/api/v1/imports", data)


def run_import(client, capture, kind: str, content: bytes, name: str = "data.csv", **form) -> Job:
    """Import through the API, run the job, and return it finished."""
    with capture(execute=True):
        response = post_import(client, kind, content, name, **form)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    return job


def report_rows(client, job: Job) -> list[list[str]]:
    response = client.get(f"/api/v1/imports/{job.pk}/report")
    assert response.status_code == 200, response.content
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))

"""An upload larger than SIYU_IMPORT_MAX_BYTES is stopped while it arrives, by
LimitedUploadHandler (first in FILE_UPLOAD_HANDLERS): the handlers that would keep it in
memory or write it to a temporary file get nothing more, nothing is stored under
SIYU_HOME/imports, and the console (the form, in Chinese, 413) and the API (413
`file_too_large`) say which field and what limit. The CSRF check still runs: a refused upload
with a valid token gets the form back, one without gets the CSRF 403, never a 500."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test import Client

from siyu.core.models import Job
from siyu.core.uploads import ENVELOPE_BYTES
from tests.contacts.importing import (  # noqa: F401 - fresh_imports is an autouse fixture
    csv_bytes,
    fresh_imports,
    imports_root,
    post_import,
)
from tests.helpers import db_snapshot, error_of, snapshot_diff

LIMIT = 1024 * 1024  # 1 MB
HEADER = "姓名,手机号\r\n".encode()


def big_file(size: int) -> bytes:
    return HEADER + b"x" * (size - len(HEADER))


# Over the limit by its Content-Length (no byte of the file is read), and a file just over
# the limit in a body whose Content-Length is within the envelope margin (stopped by counting).
SIZES = {"content-length": LIMIT + ENVELOPE_BYTES + 1, "received": LIMIT + 10_000}


@pytest.fixture
def passed_on(settings, tmp_path, monkeypatch) -> list[int]:
    """The bytes of files that Django's own handler wrote to a temporary file: the limit is
    lowered to 1 MB, and every upload over 1 KB goes to a temporary file."""
    settings.SIYU_IMPORT_MAX_BYTES = LIMIT
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    written: list[int] = []
    original = TemporaryFileUploadHandler.receive_data_chunk

    def spy(self, raw_data, start):
        written.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", spy)
    return written


def nothing_stored() -> bool:
    return not imports_root().exists()


@pytest.mark.parametrize("how", SIZES)
def test_console_upload_over_the_limit_is_refused_before_it_is_written(cast, passed_on, how):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator.staff)
    client.get("/w/brand/imports/new/")
    token = client.cookies["csrftoken"].value
    before = db_snapshot()
    response = client.post(
        "/w/brand/imports/new/",
        {
            "csrfmiddlewaretoken": token,
            "kind": "orders",
            "file": SimpleUploadedFile("客户.csv", big_file(SIZES[how])),
        },
    )
    assert response.status_code == 413
    page = response.content.decode()
    assert "文件超过 1 MB，请拆分成多个文件" in page and 'role="alert"' in page
    assert 'value="orders" checked' in page  # the form comes back as it was
    assert sum(passed_on) <= LIMIT < SIZES[how]
    if how == "content-length":
        assert passed_on == []
    assert nothing_stored() and snapshot_diff(before, db_snapshot()) == []


def test_a_refused_upload_without_a_csrf_token_gets_the_csrf_403(cast, passed_on):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator.staff)
    for size in SIZES.values():
        response = client.post(
            "/w/brand/imports/new/",
            {"kind": "contacts", "file": SimpleUploadedFile("客户.csv", big_file(size))},
        )
        assert response.status_code == 403 and b"CSRF" in response.content
    assert sum(passed_on) <= LIMIT and nothing_stored()


def test_a_refused_upload_is_still_checked_against_the_role(cast, console, passed_on):
    response = console("analyst").post(
        "/w/brand/imports/new/",
        {"kind": "contacts", "file": SimpleUploadedFile("a.csv", big_file(SIZES["received"]))},
    )
    assert response.status_code == 403 and nothing_stored()


def test_a_file_within_the_limit_is_still_uploaded(cast, console, passed_on):
    content = csv_bytes([["姓名", "手机号"]] + [["王小明", f"138{i:08d}"] for i in range(100)])
    response = console("operator").post(
        "/w/brand/imports/new/", {"kind": "contacts", "file": SimpleUploadedFile("a.csv", content)}
    )
    assert response.status_code == 302 and sum(passed_on) == len(content)


@pytest.mark.parametrize("how", SIZES)
def test_api_upload_over_the_limit_answers_413(cast, api, passed_on, how):
    client = api("operator")
    before = db_snapshot()
    response = post_import(client, "contacts", big_file(SIZES[how]))
    assert response.status_code == 413
    body = error_of(response)
    assert body["code"] == "file_too_large"
    assert body["details"] == {"field": "file", "max_bytes": LIMIT}
    assert body["message"] == "file: the file is larger than 1 MB; split it into smaller files"
    assert sum(passed_on) <= LIMIT
    assert nothing_stored() and snapshot_diff(before, db_snapshot()) == []


def test_api_upload_with_the_file_before_the_other_fields(cast, api, passed_on):
    """Fields after a refused file are never read: the answer is still the 413."""
    response = api("operator").client.post(
        "/api/v1/imports",
        {"file": SimpleUploadedFile("a.csv", big_file(SIZES["received"])), "kind": "contacts"},
    )
    assert response.status_code == 413 and error_of(response)["code"] == "file_too_large"
    assert nothing_stored() and not Job.objects.exists()


def test_upload_store_counts_the_bytes_too(cast, settings):
    """Without the handler (another entry point), storing stops at the limit all the same."""
    from siyu.contacts.imports.uploads import upload_store
    from siyu.core.uploads import UploadTooLarge

    settings.SIYU_IMPORT_MAX_BYTES = 100
    with pytest.raises(UploadTooLarge) as exc:
        upload_store(
            workspace=cast.workspace,
            actor=cast.operator.actor,
            kind="contacts",
            name="a.csv",
            chunks=iter([HEADER, b"x" * 60, b"y" * 60]),
        )
    assert exc.value.status == 413 and exc.value.details == {"field": "file", "max_bytes": 100}
    assert [p for p in imports_root().rglob("*") if p.is_file()] == []

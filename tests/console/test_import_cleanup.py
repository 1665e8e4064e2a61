"""Import files hold phones and emails in clear, so they are deleted on a schedule (the
worker's hourly step and `siyu cleanup-files`, also `siyu cleanup-exports`), in every
workspace, not only when someone uploads again: uploads never started after a day, anything
left behind after a week, error reports SIYU_IMPORT_REPORT_RETENTION_HOURS after the import
finished. An expired report is marked on its job (audited), so the console says
"报告已过期" and the API answers 410 instead of a broken link; nothing outside the imports
directory is ever touched."""

import datetime
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from siyu.cli import main
from siyu.contacts.imports.cleanup import imports_cleanup
from siyu.contacts.imports.uploads import job_report_path
from siyu.core.management.commands import worker
from siyu.core.models import AuditLog, Job
from tests.contacts.importing import csv_bytes, run_import
from tests.helpers import error_of

EXPIRED = "报告已过期"
HOUR = datetime.timedelta(hours=1)
DAY = 24 * HOUR
ROWS = [["姓名", "手机号"], ["王小明", "13812345678"], ["坏手机", "123"]]
UPLOAD = "AbCdEfGhIjKlMnOpQrStUvWx"  # an upload's name, 24 characters like token_urlsafe(18)


@pytest.fixture
def home(settings, tmp_path) -> Path:
    """A SIYU_HOME of this test's own, so that no other test's files are swept."""
    settings.SIYU_HOME = tmp_path / "home"
    settings.SIYU_HOME.mkdir()
    return settings.SIYU_HOME


@pytest.fixture
def imports(home, cast, api, django_capture_on_commit_callbacks):
    """imports() -> a finished contacts import by an operator key with one failed row, its
    error report on disk."""
    client = api("operator")

    def make() -> Job:
        job = run_import(client, django_capture_on_commit_callbacks, "contacts", csv_bytes(ROWS))
        assert job.result["failed"] == 1 and job_report_path(job) is not None
        return job

    make.client = client
    return make


def age(job: Job, delta: datetime.timedelta) -> Path:
    """Make a finished import look `delta` old: its finish time and its report's mtime."""
    path = job_report_path(job)
    when = timezone.now() - delta
    Job.objects.filter(pk=job.pk).update(finished_at=when)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def old_file(path: Path, delta: datetime.timedelta, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = (timezone.now() - delta).timestamp()
    os.utime(path, (when, when))
    return path


def test_old_report_is_deleted_and_marked_expired_fresh_one_kept(cast, console, imports):
    old, fresh = imports(), imports()
    old_path = age(old, 73 * HOUR)  # default retention: 72 hours
    fresh_path = job_report_path(fresh)

    result = imports_cleanup()
    assert (result.expired_reports, result.deleted_reports, result.deleted_uploads) == (1, 1, 0)
    assert not old_path.exists() and fresh_path.exists()
    old.refresh_from_db()
    assert old.result["report_expired"] is True and old.result["failed"] == 1
    assert old.status == Job.Status.DONE and old.result["errors"]  # the masked first errors stay
    row = AuditLog.objects.get(action="import.report_expire")
    assert row.object_id == str(old.pk) and row.actor_label == "cleanup-imports"
    assert row.after["file_deleted"] is True and row.after["retention_hours"] == 72
    assert row.workspace == cast.workspace

    # the console: the page and the list say so, the old link answers 410 with the message
    client = console("owner")
    gone = client.get(f"/w/brand/imports/{old.pk}/report/")
    assert gone.status_code == 410 and EXPIRED in gone.content.decode()
    page = client.get(f"/w/brand/imports/{old.pk}/").content.decode()
    assert EXPIRED in page and f"/imports/{old.pk}/report/" not in page
    listing = client.get("/w/brand/imports/").content.decode()
    assert EXPIRED in listing and f"/imports/{old.pk}/report/" not in listing
    assert f"/imports/{fresh.pk}/report/" in listing
    assert client.get(f"/w/brand/imports/{fresh.pk}/report/").status_code == 200
    fresh_page = client.get(f"/w/brand/imports/{fresh.pk}/").content.decode()
    assert EXPIRED not in fresh_page and f"/imports/{fresh.pk}/report/" in fresh_page

    # the API: 410 for the report, the import says it expired
    api_client = imports.client
    gone = api_client.get(f"/api/v1/imports/{old.pk}/report")
    assert gone.status_code == 410 and error_of(gone)["code"] == "report_expired"
    assert "72 hours" in error_of(gone)["message"]
    body = api_client.get(f"/api/v1/imports/{old.pk}").json()
    assert body["report_url"] is None and body["report_expired"] is True
    body = api_client.get(f"/api/v1/imports/{fresh.pk}").json()
    assert body["report_url"] is not None and body["report_expired"] is False
    assert api_client.get(f"/api/v1/imports/{fresh.pk}/report").status_code == 200
    downloads = AuditLog.objects.filter(action="import.report_download", object_id=old.pk)
    assert not downloads.exists()

    # a second run finds nothing more to do and audits nothing again
    again = imports_cleanup()
    assert (again.expired_reports, again.deleted_reports, again.deleted_uploads) == (0, 0, 0)
    assert AuditLog.objects.filter(action="import.report_expire").count() == 1
    # an outsider still gets a 404, never the expired message
    assert console("outsider").get(f"/w/brand/imports/{old.pk}/report/").status_code == 404


def test_the_retention_setting_is_honoured(settings, imports):
    job = imports()
    path = age(job, 3 * HOUR)
    assert not imports_cleanup().changed and path.exists()  # 72 hours by default
    settings.SIYU_IMPORT_REPORT_RETENTION_HOURS = 2
    assert imports_cleanup().expired_reports == 1 and not path.exists()
    with pytest.raises(ValueError):
        imports_cleanup(retention_hours=0)


def test_a_report_gone_from_disk_shows_expired(console, imports):
    job = imports()
    job_report_path(job).unlink()
    client = console("owner")
    assert client.get(f"/w/brand/imports/{job.pk}/report/").status_code == 410
    assert EXPIRED in client.get(f"/w/brand/imports/{job.pk}/").content.decode()
    assert imports.client.get(f"/api/v1/imports/{job.pk}/report").status_code == 410
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - 4 * DAY)
    result = imports_cleanup()
    assert result.expired_reports == 1 and result.deleted_reports == 0
    assert AuditLog.objects.get(action="import.report_expire").after["file_deleted"] is False


def test_an_import_without_failed_rows_has_no_report_to_expire(
    home, api, django_capture_on_commit_callbacks
):
    client = api("operator")
    job = run_import(client, django_capture_on_commit_callbacks, "contacts", csv_bytes(ROWS[:2]))
    assert job.result["report"] == ""
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - 100 * HOUR)
    assert not imports_cleanup().changed
    job.refresh_from_db()
    assert "report_expired" not in job.result
    assert client.get(f"/api/v1/imports/{job.pk}/report").status_code == 404
    assert client.get(f"/api/v1/imports/{job.pk}").json()["report_expired"] is False


def test_old_uploads_in_every_workspace_and_orphan_reports(home, db):
    """Uploads never started go after a day, started ones left behind after a week, in every
    workspace folder (before, only when someone uploaded again in the same workspace)."""
    brand, other = home / "imports" / "brand", home / "imports" / "other"
    unstarted = [
        old_file(brand / f"{UPLOAD}.csv", 25 * HOUR),
        old_file(brand / f"{UPLOAD}.json", 25 * HOUR),
    ]
    fresh = [
        old_file(other / f"{'f' * 24}.xlsx", 2 * HOUR),
        old_file(other / f"{'f' * 24}.json", 2 * HOUR),
    ]
    writing = old_file(other / f"{'p' * 24}.part", 25 * HOUR)
    left = [
        old_file(other / f"{'s' * 24}.csv", 8 * DAY),
        old_file(other / f"{'s' * 24}.started", 8 * DAY),
    ]
    started = [
        old_file(brand / f"{'r' * 24}.csv", 2 * DAY),
        old_file(brand / f"{'r' * 24}.started", 2 * DAY),
    ]
    orphan_old = old_file(other / "reports" / "9-abcDEF.csv", 100 * HOUR)  # its job is gone
    orphan_new = old_file(brand / "reports" / "10-abc.csv", 1 * HOUR)

    result = imports_cleanup()
    assert (result.expired_reports, result.deleted_reports, result.deleted_uploads) == (0, 1, 5)
    for path in (*unstarted, writing, *left, orphan_old):
        assert not path.exists(), path
    for path in (*fresh, *started, orphan_new):
        assert path.exists(), path


def test_files_outside_the_imports_directory_are_never_touched(home, tmp_path, imports):
    ancient = 1000 * HOUR
    outside = tmp_path / "outside"
    secret = old_file(outside / "1-secret.csv", ancient, "do not delete")
    secret_upload = old_file(outside / f"{UPLOAD}.csv", ancient, "do not delete")
    beside = old_file(home / f"{UPLOAD}.csv", ancient)  # in SIYU_HOME, not under imports/
    top = old_file(home / "imports" / f"{UPLOAD}.csv", ancient)  # not in a workspace folder
    notes = old_file(home / "imports" / "brand" / "notes.txt", ancient)
    report_notes = old_file(home / "imports" / "brand" / "reports" / "notes.csv", ancient)
    (home / "imports" / "brand" / f"{'l' * 24}.csv").symlink_to(secret_upload)
    (home / "imports" / "brand" / "reports" / "5-link.csv").symlink_to(secret)
    (home / "imports" / "linked").symlink_to(outside, target_is_directory=True)
    # a job whose recorded report points outside (tampered)
    tampered = imports()
    job_report_path(tampered).unlink()
    Job.objects.filter(pk=tampered.pk).update(
        result={**tampered.result, "report": "../../outside/1-secret.csv"},
        finished_at=timezone.now() - ancient,
    )

    result = imports_cleanup()
    assert result.expired_reports == 1 and result.deleted_reports == 0
    assert result.deleted_uploads == 0
    for path in (secret, secret_upload, beside, top, notes, report_notes):
        assert path.exists(), path
    assert secret.read_text() == "do not delete"
    assert (home / "imports" / "linked" / "1-secret.csv").exists()


@pytest.fixture
def keep_db_open(monkeypatch):
    """`siyu ...` closes every connection when a command ends: keep the test's open."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


@pytest.mark.parametrize("name", ["cleanup-files", "cleanup-exports"])
def test_siyu_cleanup_files_command(imports, keep_db_open, capsys, name):
    job = imports()
    path = age(job, 5 * HOUR)
    main(["siyu", name])
    out = capsys.readouterr().out
    assert "expired 0 export(s)" in out and "expired 0 import report(s)" in out
    assert path.exists()
    main(["siyu", name, "--hours", "4"])
    out = capsys.readouterr().out
    assert "expired 1 import report(s), deleted 1 report file(s) and 0 upload file(s)" in out
    assert not path.exists()
    with pytest.raises(CommandError):
        call_command("cleanup_files", "--hours", "0")


def test_worker_runs_the_import_cleanup_and_survives_its_failure(imports, monkeypatch, caplog):
    job = imports()
    age(job, 80 * HOUR)
    assert worker.cleanup_files() == [
        "import cleanup: expired 1 import report(s), deleted 1 report file(s) and 0 upload file(s)"
    ]
    assert worker.cleanup_imports() == ""  # nothing left to do

    def broken(**kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr("siyu.contacts.imports.cleanup.imports_cleanup", broken)
    assert worker.cleanup_imports() == ""
    assert "import cleanup failed" in caplog.text
    # one cleanup failing does not stop the other
    monkeypatch.setattr("siyu.contacts.export.exports_cleanup", broken)
    assert worker.cleanup_files() == []
    assert "export cleanup failed" in caplog.text

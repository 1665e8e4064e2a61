"""Export retention: finished export files (customer data) are deleted after
SIYU_EXPORT_RETENTION_HOURS, their jobs marked expired (audited) so the console says
"文件已过期，请重新导出" and the download answers 410; stale `.part` files go after a day; nothing
outside the exports directory is ever touched. Run by the worker and `siyu cleanup-exports`."""

import datetime
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from siyu.cli import main
from siyu.contacts.export import export_path, exports_cleanup
from siyu.core.management.commands import worker
from siyu.core.models import AuditLog, Job
from tests.console.test_export import download, export

EXPIRED = "文件已过期，请重新导出"
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def home(settings, tmp_path) -> Path:
    """A SIYU_HOME of this test's own, so that no other test's files are swept."""
    settings.SIYU_HOME = tmp_path / "home"
    settings.SIYU_HOME.mkdir()
    return settings.SIYU_HOME


@pytest.fixture
def exports(home, cast, make_contact, console, django_capture_on_commit_callbacks):
    """export() -> a finished CSV export job of the owner, its file on disk."""
    make_contact("王小明", phone="13812345678")

    def make() -> Job:
        job = export(console("owner"), django_capture_on_commit_callbacks)
        assert export_path(job) is not None
        return job

    return make


def age(job: Job, delta: datetime.timedelta) -> Path:
    """Make a finished export look `delta` old: its finish time and its file's mtime."""
    path = export_path(job)
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


def test_old_export_is_deleted_and_marked_expired_fresh_one_kept(cast, console, exports):
    old, fresh = exports(), exports()
    old_path = age(old, 73 * HOUR)  # default retention: 72 hours
    fresh_path = export_path(fresh)

    result = exports_cleanup()
    assert (result.expired_jobs, result.deleted_files, result.deleted_parts) == (1, 1, 0)
    assert not old_path.exists() and fresh_path.exists()
    old.refresh_from_db()
    assert old.result["expired"] is True and old.result["rows"] == 1
    assert old.status == Job.Status.DONE
    row = AuditLog.objects.get(action="export.expire")
    assert row.object_id == str(old.pk) and row.actor_label == "cleanup-exports"
    assert row.after["file_deleted"] is True and row.after["retention_hours"] == 72
    assert row.workspace == cast.workspace

    client = console("owner")
    gone = download(client, old)
    assert gone.status_code == 410 and EXPIRED in gone.content.decode()
    page = client.get(f"/w/brand/exports/{old.pk}/").content.decode()
    assert EXPIRED in page and f"/exports/{old.pk}/download/" not in page
    assert download(client, fresh).status_code == 200
    fresh_page = client.get(f"/w/brand/exports/{fresh.pk}/").content.decode()
    assert EXPIRED not in fresh_page and f"/exports/{fresh.pk}/download/" in fresh_page
    assert AuditLog.objects.filter(action="export.download").count() == 1  # the fresh one

    # a second run finds nothing more to do and audits nothing again
    again = exports_cleanup()
    assert (again.expired_jobs, again.deleted_files, again.deleted_parts) == (0, 0, 0)
    assert AuditLog.objects.filter(action="export.expire").count() == 1
    # an outsider still gets a 404, never the expired message
    assert download(console("outsider"), old).status_code == 404


def test_the_retention_setting_is_honoured(settings, exports):
    job = exports()
    path = age(job, 3 * HOUR)
    assert not exports_cleanup().changed and path.exists()  # 72 hours by default
    settings.SIYU_EXPORT_RETENTION_HOURS = 2
    assert exports_cleanup().expired_jobs == 1 and not path.exists()
    with pytest.raises(ValueError):
        exports_cleanup(retention_hours=0)


def test_a_file_gone_from_disk_shows_expired(console, exports):
    job = exports()
    export_path(job).unlink()
    client = console("owner")
    assert download(client, job).status_code == 410
    assert EXPIRED in client.get(f"/w/brand/exports/{job.pk}/").content.decode()
    age_days = 4 * 24 * HOUR
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - age_days)
    result = exports_cleanup()
    assert result.expired_jobs == 1 and result.deleted_files == 0
    assert AuditLog.objects.get(action="export.expire").after["file_deleted"] is False


def test_stale_partial_and_orphan_files(home, db):
    folder = home / "exports" / "brand"
    stale_part = old_file(folder / "7-abcDEF_1.csv.part", 25 * HOUR)
    live_part = old_file(folder / "8-abc.xlsx.part", 2 * HOUR)
    orphan_old = old_file(folder / "9-abc.xlsx", 100 * HOUR)  # its job is gone
    orphan_new = old_file(folder / "10-abc.csv", 1 * HOUR)
    result = exports_cleanup()
    assert (result.expired_jobs, result.deleted_files, result.deleted_parts) == (0, 1, 1)
    assert not stale_part.exists() and not orphan_old.exists()
    assert live_part.exists() and orphan_new.exists()


def test_files_outside_the_exports_directory_are_never_touched(home, cast, tmp_path, exports):
    ancient = 1000 * HOUR
    outside = tmp_path / "outside"
    secret = old_file(outside / "1-secret.csv", ancient, "do not delete")
    beside = old_file(home / "2-beside.csv", ancient)  # in SIYU_HOME, not under exports/
    top = old_file(home / "exports" / "3-top.csv", ancient)  # not in a workspace folder
    notes = old_file(home / "exports" / "brand" / "notes.txt", ancient)
    link = home / "exports" / "brand" / "5-link.csv"
    link.symlink_to(secret)
    (home / "exports" / "linked").symlink_to(outside, target_is_directory=True)
    # jobs whose recorded file points outside (tampered), or at the symlink
    tampered, linked = exports(), exports()
    for job, name in ((tampered, "../../outside/1-secret.csv"), (linked, "brand/5-link.csv")):
        export_path(job).unlink()
        when = timezone.now() - ancient
        Job.objects.filter(pk=job.pk).update(result={"file": name, "rows": 1}, finished_at=when)

    result = exports_cleanup()
    assert result.expired_jobs == 2 and result.deleted_files == 0
    for path in (secret, beside, top, notes):
        assert path.exists(), path
    assert link.is_symlink() and secret.read_text() == "do not delete"
    assert (home / "exports" / "linked" / "1-secret.csv").exists()


@pytest.fixture
def keep_db_open(monkeypatch):
    """`siyu ...` closes every connection when a command ends: keep the test's open."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


def test_siyu_cleanup_exports_command(exports, keep_db_open, capsys):
    job = exports()
    path = age(job, 5 * HOUR)
    main(["siyu", "cleanup-exports"])
    assert "expired 0 export(s)" in capsys.readouterr().out and path.exists()
    main(["siyu", "cleanup-exports", "--hours", "4"])
    out = capsys.readouterr().out
    assert "expired 1 export(s), deleted 1 file(s) and 0 stale partial file(s)" in out
    assert not path.exists()
    with pytest.raises(CommandError):
        call_command("cleanup_exports", "--hours", "0")


def test_worker_runs_the_cleanup_and_survives_its_failure(exports, monkeypatch, caplog):
    job = exports()
    age(job, 80 * HOUR)
    assert worker.cleanup_exports().startswith("expired 1 export(s)")
    assert worker.cleanup_exports() == ""  # nothing left to do
    assert 60 * 10 <= worker.CLEANUP_SECONDS <= 6 * 3600  # a modest interval

    def broken(**kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr("siyu.contacts.export.exports_cleanup", broken)
    assert worker.cleanup_exports() == ""
    assert "export cleanup failed" in caplog.text

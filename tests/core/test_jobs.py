"""Background jobs: created in a transaction, run on commit, claimed once, with progress; and
one real `siyu worker --batch` run against a file SQLite database."""

import datetime
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from django.utils import timezone

from siyu.contacts import actions
from siyu.contacts import tasks as contact_tasks
from siyu.contacts.models import ContactTag, TimelineEntry
from siyu.core import jobs
from siyu.core.jobs import job_create, job_run
from siyu.core.models import AuditLog, Job
from tests.helpers import db_snapshot, snapshot_diff


@pytest.fixture
def tagged_world(cast, make_contact, system_actor):
    ws = cast.workspace
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="活动")
    tag = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="双十一")
    douyin = [make_contact(name=f"抖音{i}", source="douyin") for i in range(7)]
    make_contact(name="门店", source="store_qr")
    make_contact(name="外", source="douyin", workspace=cast.outsider_workspace)
    actions.contacts_tag(workspace=ws, actor=system_actor, contact_ids=[douyin[0].pk], add=[tag.pk])
    return tag, douyin


def create_bulk_tag_job(cast, tag, **flt):
    return job_create(
        workspace=cast.workspace,
        actor=cast.operator.actor,
        kind="contacts.bulk_tag",
        params={"filter": flt, "add": [tag.pk]},
    )


def test_job_runs_on_commit_with_progress_and_result(
    cast, tagged_world, django_capture_on_commit_callbacks, monkeypatch
):
    tag, douyin = tagged_world
    monkeypatch.setattr(contact_tasks, "BATCH", 3)
    calls = []
    original = jobs.HANDLERS["contacts.bulk_tag"]

    def recording(job, progress):
        def spy(done, total=None):
            calls.append((done, total))
            progress(done, total)
            row = Job.objects.get(pk=job.pk)
            assert row.status == "running" and row.done == done

        return original(job, spy)

    monkeypatch.setitem(jobs.HANDLERS, "contacts.bulk_tag", recording)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = create_bulk_tag_job(cast, tag, source="douyin")
        assert Job.objects.get(pk=job.pk).status == "queued"
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert calls == [(0, 7), (3, None), (6, None), (7, None)]
    assert (job.done, job.total, job.percent, job.finished) == (7, 7, 100, True)
    assert job.result == {"matched": 7, "added": 6, "removed": 0}
    assert job.started_at <= job.finished_at
    assert (job.actor_label, job.actor_role, job.created_by) == (
        "operator@brand.test",
        "operator",
        cast.operator.staff,
    )
    assert set(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True)) == {
        c.pk for c in douyin
    }
    entries = TimelineEntry.objects.filter(kind="tag_added", actor_label="operator@brand.test")
    assert entries.count() == 6
    # one audit row per batch that changed something, all by the job's actor
    audits = AuditLog.objects.filter(action="contacts.tag", actor=cast.operator.staff)
    assert sum(a.after["added"] for a in audits) == 6


def test_job_is_not_run_before_commit(cast, tagged_world, django_capture_on_commit_callbacks):
    tag, _ = tagged_world
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = create_bulk_tag_job(cast, tag)
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == "queued" and job.percent == 0
    assert ContactTag.objects.filter(tag=tag).count() == 1


def test_job_is_claimed_once(cast, tagged_world, django_capture_on_commit_callbacks):
    tag, _ = tagged_world
    with django_capture_on_commit_callbacks(execute=True):
        job = create_bulk_tag_job(cast, tag, source="douyin")
    job.refresh_from_db()
    assert job.status == "done"
    before = db_snapshot()
    job_run(job.pk)  # a second delivery of the same task
    assert snapshot_diff(before, db_snapshot()) == []


def test_a_rerun_after_a_crash_is_harmless(cast, tagged_world, django_capture_on_commit_callbacks):
    tag, douyin = tagged_world
    with django_capture_on_commit_callbacks(execute=True):
        job = create_bulk_tag_job(cast, tag, source="douyin")
    Job.objects.filter(pk=job.pk).update(status="queued")  # as if the worker died mid-way
    timeline_rows = TimelineEntry.objects.count()
    job_run(job.pk)
    job.refresh_from_db()
    assert job.status == "done"
    assert job.result == {"matched": 7, "added": 0, "removed": 0}
    assert ContactTag.objects.filter(tag=tag).count() == 7
    assert TimelineEntry.objects.count() == timeline_rows


def test_a_job_over_a_filter_sees_only_what_its_actor_sees(
    cast, make_contact, system_actor, django_capture_on_commit_callbacks
):
    ws = cast.workspace
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="g")
    tag = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="t")
    mine = make_contact(name="我的", owner=cast.agent)
    make_contact(name="别人的", owner=cast.operator)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_create(
            workspace=ws,
            actor=cast.agent.actor,
            kind="contacts.bulk_tag",
            params={"filter": {}, "add": [tag.pk]},
        )
    job.refresh_from_db()
    assert job.result == {"matched": 1, "added": 1, "removed": 0}
    assert list(ContactTag.objects.values_list("contact_id", flat=True)) == [mine.pk]


def test_a_failing_handler_marks_the_job_failed(
    cast, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(job, progress):
        progress(1, 4)
        raise ValueError("the spreadsheet has no header row")

    monkeypatch.setitem(jobs.HANDLERS, "test.broken", broken)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_create(
            workspace=cast.workspace, actor=cast.admin.actor, kind="test.broken", params={}
        )
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "the spreadsheet has no header row"
    assert (job.done, job.total, job.percent) == (1, 4, 25)
    assert job.finished and job.finished_at is not None
    assert job.result == {}


def test_an_unknown_tag_fails_the_job_without_tagging(
    cast, tagged_world, django_capture_on_commit_callbacks
):
    tag, _ = tagged_world
    before = ContactTag.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        job = job_create(
            workspace=cast.workspace,
            actor=cast.admin.actor,
            kind="contacts.bulk_tag",
            params={"filter": {}, "add": [tag.pk, 999999]},
        )
    job.refresh_from_db()
    assert job.status == "failed"
    assert "999999" in job.error
    assert ContactTag.objects.count() == before


# --- heartbeats: a long job is never run twice, a job whose worker died is run again --------


def running_job(cast, started_ago: datetime.timedelta, beat_ago: datetime.timedelta | None):
    now = timezone.now()
    return Job.objects.create(
        workspace=cast.workspace,
        kind="contacts.bulk_tag",
        params={"filter": {}, "add": []},
        status=Job.Status.RUNNING,
        started_at=now - started_ago,
        heartbeat_at=None if beat_ago is None else now - beat_ago,
    )


def test_only_jobs_without_a_recent_heartbeat_are_requeued(
    cast, django_capture_on_commit_callbacks
):
    hours, minutes = datetime.timedelta(hours=1), datetime.timedelta(minutes=1)
    long_and_alive = running_job(cast, started_ago=3 * hours, beat_ago=minutes)
    dead = running_job(cast, started_ago=3 * hours, beat_ago=11 * minutes)
    just_died = running_job(cast, started_ago=20 * minutes, beat_ago=9 * minutes)
    old_without_beat = running_job(cast, started_ago=11 * minutes, beat_ago=None)
    new_without_beat = running_job(cast, started_ago=5 * minutes, beat_ago=None)
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        assert jobs.jobs_requeue_stale() == 2
    assert len(enqueued) == 2
    status = dict(Job.objects.values_list("pk", "status"))
    assert status[dead.pk] == status[old_without_beat.pk] == "queued"
    for alive in (long_and_alive, just_died, new_without_beat):
        assert status[alive.pk] == "running"
    assert jobs.STALE_SECONDS == 600
    with django_capture_on_commit_callbacks(execute=False):
        assert jobs.jobs_requeue_stale(older_than_seconds=8 * 60) == 1  # just_died, now
    assert Job.objects.get(pk=just_died.pk).status == "queued"


def test_claim_and_progress_write_the_heartbeat(
    cast, tagged_world, monkeypatch, django_capture_on_commit_callbacks
):
    """A job running longer than the stale threshold, reporting progress per batch, is left to
    its worker by another worker's requeue."""
    tag, _ = tagged_world
    monkeypatch.setattr(contact_tasks, "BATCH", 3)
    original = jobs.HANDLERS["contacts.bulk_tag"]
    beats, requeued = [], []

    def long_running(job, progress):
        row = Job.objects.get(pk=job.pk)
        assert row.heartbeat_at is not None and row.heartbeat_at >= row.started_at  # claimed

        def slow(done, total=None):
            # as if this job had started two hours ago and its last beat was long ago
            long_ago = timezone.now() - datetime.timedelta(hours=2)
            Job.objects.filter(pk=job.pk).update(started_at=long_ago, heartbeat_at=long_ago)
            progress(done, total)
            beats.append(Job.objects.get(pk=job.pk).heartbeat_at)
            requeued.append(jobs.jobs_requeue_stale())  # another worker starting now

        return original(job, slow)

    monkeypatch.setitem(jobs.HANDLERS, "contacts.bulk_tag", long_running)
    with django_capture_on_commit_callbacks(execute=True):
        job = create_bulk_tag_job(cast, tag, source="douyin")
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert requeued == [0, 0, 0, 0]  # progress(0, 7), then batches of 3, 3 and 1
    assert all(timezone.now() - beat < datetime.timedelta(minutes=1) for beat in beats)


def test_the_worker_requeues_periodically_and_survives_a_failure(monkeypatch, caplog):
    import collections
    import threading
    import time

    from siyu.core.management.commands import worker

    assert worker.REQUEUE_SECONDS * 5 <= jobs.STALE_SECONDS
    assert worker.REQUEUE_SECONDS < worker.CLEANUP_SECONDS
    # the housekeeping thread: requeue every REQUEUE_SECONDS, the files every CLEANUP_SECONDS
    calls = collections.Counter()
    monkeypatch.setattr(worker, "REQUEUE_SECONDS", 0.01)
    monkeypatch.setattr(worker, "CLEANUP_SECONDS", 0.1)
    monkeypatch.setattr(worker, "requeue_stale", lambda: calls.update(["requeue"]))
    monkeypatch.setattr(worker, "cleanup_files", lambda: calls.update(["cleanup"]))
    # the other chores of the loop need a database this test has none of: each raised and
    # logged a traceback per turn, which on a loaded machine slowed the turns below 5 in 0.5 s
    for chore in ("enqueue_segment_work", "enqueue_sending", "enqueue_vendor_polls"):
        monkeypatch.setattr(worker, chore, lambda: None)
    stop = threading.Event()
    thread = threading.Thread(target=worker._housekeeping, args=(stop,))
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=2)
    assert calls["requeue"] >= 5 and 1 <= calls["cleanup"] <= 6
    assert calls["requeue"] > calls["cleanup"]
    monkeypatch.undo()

    def broken():
        raise OSError("database gone")

    monkeypatch.setattr(worker, "jobs_requeue_stale", broken)
    assert worker.requeue_stale() == 0 and "requeueing stale jobs failed" in caplog.text


# --- a real worker process ----------------------------------------------------------------


def _siyu(env, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_real_worker_runs_a_queued_job(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIYU_")},
        "DJANGO_SETTINGS_MODULE": "siyu.settings",
        "SIYU_HOME": str(tmp_path),
        "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "SIYU_ENCRYPTION_KEYS": "Q2hhbmdlTWVDaGFuZ2VNZUNoYW5nZU1lQ2hhbmdlTWU=",
        "SIYU_HASH_KEY": "worker-test-hash-key",
        "SIYU_SECRET_KEY": "worker-test-secret",
        "SIYU_LOG_LEVEL": "WARNING",
    }
    migrate = _siyu(env, "migrate", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr
    script = textwrap.dedent(
        """
        from django.db import transaction
        from siyu.accounts.actions import workspace_create
        from siyu.contacts import actions
        from siyu.core.audit import Actor
        from siyu.core.jobs import job_create
        a = Actor.system("worker-test")
        ws = workspace_create(name="w", slug="w", actor=a)
        g = actions.tag_group_create(workspace=ws, actor=a, name="g")
        t = actions.tag_create(workspace=ws, actor=a, group=g, name="t")
        for i in range(5):
            actions.contact_create(workspace=ws, actor=a, profile={"name": f"c{i}"})
        with transaction.atomic():
            job = job_create(workspace=ws, actor=a, kind="contacts.bulk_tag",
                             params={"filter": {}, "add": [t.pk]})
        print(job.pk)
        """
    )
    setup = _siyu(env, "shell", "-c", script)
    assert setup.returncode == 0, setup.stderr
    job_id = int(setup.stdout.strip().splitlines()[-1])

    db = sqlite3.connect(tmp_path / "worker.sqlite3")
    try:
        assert db.execute("SELECT status FROM core_job WHERE id=?", (job_id,)).fetchone() == (
            "queued",
        )
        worker = _siyu(env, "worker", "--batch", "--interval", "0.1")
        assert worker.returncode == 0, worker.stderr
        assert "siyu worker" in worker.stdout
        status, done, total, result = db.execute(
            "SELECT status, done, total, result FROM core_job WHERE id=?", (job_id,)
        ).fetchone()
        assert (status, done, total) == ("done", 5, 5)
        assert json.loads(result) == {"matched": 5, "added": 5, "removed": 0}
        assert db.execute("SELECT COUNT(*) FROM contacts_contacttag").fetchone() == (5,)
        # the worker removes its heartbeat when it exits
        assert db.execute("SELECT COUNT(*) FROM core_workerheartbeat").fetchone() == (0,)
    finally:
        db.close()


def test_a_bulk_tag_job_never_stores_a_searched_phone_in_clear(
    cast, make_contact, django_capture_on_commit_callbacks
):
    """The list filter may be a phone number; the job keeps it encrypted, like all PII."""
    from django.db import connection

    from siyu.contacts.actions import tag_create, tag_group_create
    from siyu.contacts.queries import ContactFilter
    from siyu.core.jobs import job_create
    from siyu.core.models import Job

    contact = make_contact("王五", phone="13700001111")
    group = tag_group_create(workspace=cast.workspace, actor=cast.owner.actor, name="组")
    tag = tag_create(workspace=cast.workspace, actor=cast.owner.actor, group=group, name="VIP")
    with django_capture_on_commit_callbacks(execute=True):
        job = job_create(
            workspace=cast.workspace,
            actor=cast.owner.actor,
            kind="contacts.bulk_tag",
            params={"filter": ContactFilter(q="137 0000 1111").sealed(), "add": [tag.pk]},
        )
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert job.result == {"matched": 1, "added": 1, "removed": 0}
    assert contact.contact_tags.filter(tag=tag).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT params FROM core_job WHERE id = %s", [job.pk])
        raw = str(cursor.fetchone()[0])
    assert "13700001111" not in raw and "137 0000 1111" not in raw

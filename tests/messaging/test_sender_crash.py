"""A real worker process is killed (SIGKILL) in the middle of sending a batch through the
Aliyun SMS fake; a second worker then finishes. Every message reaches the vendor exactly
once: none twice, none lost. Runs on a SQLite file, and on a fresh PostgreSQL database too
when the suite runs on PostgreSQL."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter

from django.conf import settings as django_settings

from tests.messaging.fakes.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, AliyunSmsFake

MESSAGES = 150

SETUP = """
from django.db import transaction
from siyu.accounts.actions import workspace_create
from siyu.contacts.actions.consent import consent_set
from siyu.contacts.actions import contact_create
from siyu.contacts.actions.contact import IdentityInput
from siyu.core.audit import Actor
from siyu.messaging import actions

a = Actor.system("crash-test")
ws = workspace_create(name="w", slug="w", actor=a)
channel = actions.channel_create(
    workspace=ws, actor=a, kind="sms_aliyun", name="sms", rate_per_second=1000,
    settings={"sign_name": "星巴克"},
    secrets={"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET},
)
template = actions.template_create(
    workspace=ws, actor=a, kind="sms_aliyun", name="t",
    content={"template_code": "SMS_1", "text": "${name}您好",
             "params": {"name": "{{ contact.name }}"}},
)
ids = []
for i in range(COUNT):
    c = contact_create(workspace=ws, actor=a, profile={"name": f"客户{i}"},
                       identities=[IdentityInput("phone", f"1380013{i:04d}")])
    consent_set(workspace=ws, actor=a, contact=c, channel="sms", status="granted")
    ids.append(c.pk)
with transaction.atomic():  # the sender is enqueued when this commits
    actions.outbox_enqueue(workspace=ws, channel=channel, template=template,
                           source="broadcast:1", contact_ids=ids)
print(channel.pk)
"""


def _database_url(tmp_path):
    """A SQLite file, or a fresh PostgreSQL database when the suite runs on PostgreSQL."""
    if django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        import psycopg

        name = f"siyu_crash_{uuid.uuid4().hex[:8]}"
        db = django_settings.DATABASES["default"]
        admin = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")

        def drop():
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

        return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}", drop
    return f"sqlite:///{tmp_path / 'crash.sqlite3'}", lambda: None


def _siyu(env, *args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _query(env, sql):
    script = f"from django.db import connection\nc = connection.cursor()\nc.execute({sql!r})\n"
    script += "print(repr(c.fetchall()))"
    result = _siyu(env, "shell", "-c", script)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_loses_nothing(tmp_path):
    url, drop = _database_url(tmp_path)
    with AliyunSmsFake() as fake:
        # the vendor takes the first call's messages but answers late: the kill lands while the
        # group is in flight, the case recovery exists for
        fake.delay_after = 1.0
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SIYU_")},
            "DJANGO_SETTINGS_MODULE": "siyu.settings",
            "SIYU_HOME": str(tmp_path),
            "SIYU_DATABASE_URL": url,
            "SIYU_ENCRYPTION_KEYS": "Q2hhbmdlTWVDaGFuZ2VNZUNoYW5nZU1lQ2hhbmdlTWU=",
            "SIYU_HASH_KEY": "crash-test-hash-key",
            "SIYU_SECRET_KEY": "crash-test-secret",
            "SIYU_LOG_LEVEL": "WARNING",
            "SIYU_ALIYUN_SMS_URL": fake.url,
            "SIYU_SEND_LEASE_SECONDS": "2",
            "SIYU_ALIYUN_LOOKUP_LAG_SECONDS": "1",
        }
        try:
            assert _siyu(env, "migrate", "--verbosity", "0").returncode == 0
            setup = SETUP.replace("KEY_ID", repr(ACCESS_KEY_ID))
            setup = setup.replace("KEY_SECRET", repr(ACCESS_KEY_SECRET))
            setup = setup.replace("COUNT", str(MESSAGES))
            result = _siyu(env, "shell", "-c", textwrap.dedent(setup))
            assert result.returncode == 0, result.stderr

            worker = subprocess.Popen(
                [sys.executable, "-m", "siyu.cli", "worker", "--interval", "0.1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 60
            while len(fake.sent) < 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            killed_at = len(fake.sent)
            assert 0 < killed_at < MESSAGES, "the kill must land mid-batch"
            statuses = dict(
                _query(env, "SELECT status, COUNT(*) FROM messaging_outboxmessage GROUP BY status")
            )
            # the group in flight was left `sending`: the case recovery exists for
            assert statuses.get("sending", 0) > 0, statuses

            time.sleep(2.5)  # the dead sender's lease runs out
            finish = _siyu(env, "worker", "--batch", "--interval", "0.1")
            assert finish.returncode == 0, finish.stderr
        finally:
            rows = _query(env, "SELECT key, status FROM messaging_outboxmessage")
            drop()

    # each contact has its own phone: a message is a phone at the vendor (batches of up to
    # 100 share one OutId)
    phones = Counter(sms.phone for sms in fake.sent)
    assert len(rows) == MESSAGES
    assert {status for _, status in rows} == {"sent"}, Counter(s for _, s in rows)
    assert len(phones) == MESSAGES  # none lost
    assert max(phones.values()) == 1, [p for p, n in phones.items() if n > 1]  # none twice

"""The `siyu` command line: createadmin, apikey create, check, rotate-key."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from siyu.accounts.models import ApiKey, Membership, Staff
from siyu.cli import main
from siyu.core.keys import new_fernet_key
from siyu.core.management.commands import siyu_check
from siyu.core.models import AuditLog, WorkerHeartbeat, Workspace
from tests.conftest import ApiClient

PW = "Long-enough-pass-1"  # noqa: S105
PW2 = "Another-long-pass-2"  # noqa: S105


@pytest.fixture
def keep_db_open(monkeypatch):
    """`siyu ...` (execute_from_command_line) closes every connection when a command ends,
    which on PostgreSQL would end the test's transaction: keep it open."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- createadmin ------------------------------------------------------------------------------


def test_createadmin_creates_the_workspace_and_an_owner(db):
    out = run(
        "createadmin",
        "--email",
        "Boss@Shop.TEST",
        "--password",
        PW,
        "--workspace",
        "shop",
        "--workspace-name",
        "小店",
        "--role",
        "owner",
    )
    assert out.strip() == "Boss@Shop.TEST is owner of workspace shop"
    ws = Workspace.objects.get(slug="shop")
    assert ws.name == "小店"
    staff = Staff.objects.get()
    assert staff.email == "boss@shop.test"
    assert staff.check_password(PW)
    assert Membership.objects.get(workspace=ws, staff=staff).role == "owner"
    rows = AuditLog.objects.filter(workspace=ws).order_by("pk")
    assert [(r.action, r.actor_label) for r in rows] == [
        ("workspace.create", "cli:createadmin"),
        ("staff.add", "cli:createadmin"),
    ]


def test_createadmin_rerun_updates_password_and_role(db):
    run("createadmin", "--email", "a@shop.test", "--password", PW, "--workspace", "shop")
    run("createadmin", "--email", "b@shop.test", "--password", PW, "--workspace", "shop")
    assert Membership.objects.filter(role="owner").count() == 2  # owner is the default role
    run(
        "createadmin",
        "--email",
        "A@shop.test",
        "--password",
        PW2,
        "--workspace",
        "shop",
        "--role",
        "analyst",
    )
    staff = Staff.objects.get(email="a@shop.test")
    assert staff.check_password(PW2) and not staff.check_password(PW)
    assert Membership.objects.get(staff=staff).role == "analyst"
    assert Staff.objects.count() == 2 and Workspace.objects.count() == 1
    row = AuditLog.objects.get(action="staff.role")
    assert (row.before, row.after) == ({"role": "owner"}, {"role": "analyst"})


def test_createadmin_will_not_demote_the_last_owner(db):
    run("createadmin", "--email", "a@shop.test", "--password", PW, "--workspace", "shop")
    with pytest.raises(CommandError, match="at least one owner"):
        run(
            "createadmin",
            "--email",
            "a@shop.test",
            "--password",
            PW2,
            "--workspace",
            "shop",
            "--role",
            "agent",
        )
    staff = Staff.objects.get()
    assert staff.check_password(PW)  # the whole command rolled back, password included
    assert Membership.objects.get().role == "owner"


def test_createadmin_adds_to_an_existing_workspace(cast):
    run(
        "createadmin",
        "--email",
        "new@brand.test",
        "--password",
        PW,
        "--workspace",
        "brand",
        "--role",
        "agent",
    )
    m = Membership.objects.get(staff__email="new@brand.test")
    assert (m.workspace, m.role) == (cast.workspace, "agent")
    assert Workspace.objects.count() == 2


def test_createadmin_rejects_a_bad_role(db):
    with pytest.raises(CommandError, match="invalid choice"):
        run(
            "createadmin",
            "--email",
            "x@y.test",
            "--password",
            PW,
            "--workspace",
            "w",
            "--role",
            "boss",
        )
    assert not Workspace.objects.exists() and not Staff.objects.exists()


def test_siyu_entry_point_runs_createadmin(db, capsys, keep_db_open):
    main(["siyu", "createadmin", "--email", "c@cli.test", "--password", PW, "--workspace", "cli"])
    assert "c@cli.test is owner of workspace cli" in capsys.readouterr().out
    assert Membership.objects.get(staff__email="c@cli.test").role == "owner"


def test_siyu_without_arguments_prints_usage(capsys):
    main(["siyu"])
    out = capsys.readouterr().out
    assert "createadmin --email E --password P --workspace SLUG --role ROLE" in out
    assert "rotate-key" in out


# --- apikey -------------------------------------------------------------------------------------


def test_apikey_create_prints_the_key_on_its_last_line(cast, make_contact):
    contact = make_contact(name="接口可见")
    out = run("apikey", "create", "--workspace", "brand", "--name", "ci")
    key = out.strip().splitlines()[-1]
    assert key.startswith("sk_")
    stored = ApiKey.objects.get(name="ci")
    assert stored.role == "admin"
    assert stored.key_hash != key and key not in stored.key_hash
    r = ApiClient(key).get(f"/api/v1/contacts/{contact.pk}")
    assert r.status_code == 200
    assert r.json()["name"] == "接口可见"
    assert AuditLog.objects.get(action="apikey.create").actor_label == "cli:apikey"


def test_apikey_create_through_the_siyu_command(cast, capsys, keep_db_open):
    main(["siyu", "apikey", "create", "--workspace", "brand", "--name", "bi", "--role", "analyst"])
    captured = capsys.readouterr()
    key = captured.out.strip().splitlines()[-1]
    assert "shown only once" in captured.err
    assert ApiKey.objects.get(name="bi").role == "analyst"
    client = ApiClient(key)
    assert client.get("/api/v1/contacts").status_code == 200
    assert client.post("/api/v1/contacts", {"name": "x"}).status_code == 403


def test_apikey_create_errors(cast):
    with pytest.raises(CommandError, match="no workspace"):
        run("apikey", "create", "--workspace", "nope", "--name", "x")
    with pytest.raises(CommandError, match="invalid choice"):
        run("apikey", "create", "--workspace", "brand", "--name", "x", "--role", "owner")
    with pytest.raises(CommandError, match="needs a name"):
        run("apikey", "create", "--workspace", "brand", "--name", "  ")
    assert not ApiKey.objects.exists()


# --- check --------------------------------------------------------------------------------------


def check_output() -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("siyu_check", stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return out.getvalue(), code


def line(out: str, name: str) -> str:
    return next(x for x in out.splitlines() if f" {name}:" in x)


def test_check_fails_on_the_worker_without_a_heartbeat(db):
    out, code = check_output()
    assert code == 1
    assert line(out, "database").startswith("ok ")
    assert line(out, "migrations").startswith("ok ")
    assert "all applied" in line(out, "migrations")
    assert line(out, "worker").startswith("FAIL")
    assert "no worker seen" in line(out, "worker")
    assert line(out, "encryption key").startswith("ok ")


def test_check_passes_with_a_fresh_heartbeat(db):
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="w1", hostname="h", pid=1, started_at=now, last_seen_at=now
    )
    out, code = check_output()
    assert code == 0, out
    assert line(out, "worker").startswith("ok ")
    assert "1 worker(s) alive" in line(out, "worker")
    assert not any(x.startswith("FAIL") for x in out.splitlines())


def test_check_fails_with_a_stale_heartbeat(db):
    old = timezone.now() - datetime.timedelta(seconds=siyu_check.WORKER_STALE_SECONDS + 5)
    WorkerHeartbeat.objects.create(
        worker_id="w1", hostname="h", pid=1, started_at=old, last_seen_at=old
    )
    out, code = check_output()
    assert code == 1
    assert line(out, "worker").startswith("FAIL")


def test_check_fails_when_stored_data_cannot_be_decrypted(settings, make_contact):
    make_contact(phone="13812345678")
    WorkerHeartbeat.objects.create(
        worker_id="w1", hostname="h", pid=1, started_at=timezone.now(), last_seen_at=timezone.now()
    )
    assert check_output()[1] == 0
    settings.SIYU_ENCRYPTION_KEYS = [new_fernet_key()]  # the old key was lost
    out, code = check_output()
    assert code == 1
    assert line(out, "encryption key").startswith("FAIL")
    assert "SIYU_ENCRYPTION_KEYS" in line(out, "encryption key")


def test_check_reports_pending_migrations(db, monkeypatch):
    class Pending:
        def __init__(self, connection):
            self.loader = type("L", (), {"graph": type("G", (), {"leaf_nodes": lambda s: []})()})()

        def migration_plan(self, targets):
            return [("contacts", "0099_future")]

    monkeypatch.setattr(siyu_check, "MigrationExecutor", Pending)
    out, code = check_output()
    assert code == 1
    assert line(out, "migrations").startswith("FAIL")
    assert "1 migration(s) not applied" in line(out, "migrations")


def test_siyu_check_alias(db, capsys, keep_db_open):
    with pytest.raises(SystemExit) as exc:
        main(["siyu", "check"])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "ok    database" in out and "FAIL  worker" in out


# --- rotate-key (the full behaviour is in tests/contacts/test_identities.py) -------------------


def test_siyu_rotate_key_alias_refuses_in_env_mode(db, capsys, keep_db_open):
    with pytest.raises(SystemExit) as exc:
        main(["siyu", "rotate-key"])
    assert exc.value.code == 1
    assert "--reencrypt-only" in capsys.readouterr().err


def test_rotate_key_reencrypt_only_via_the_siyu_command(make_contact, capsys, keep_db_open):
    make_contact(phone="13812345678", email="a@b.cn")
    main(["siyu", "rotate-key", "--reencrypt-only"])
    assert "re-encrypted 2 value(s) under the newest key" in capsys.readouterr().out

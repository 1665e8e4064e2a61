"""Write keys: created through the action or `siyu writekey create`, hashed at rest,
revocable, and scoped to one workspace."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from siyu.cli import main
from siyu.core.errors import ValidationError
from siyu.tracking import actions
from siyu.tracking.models import Event, WriteKey
from tests.helpers import all_tables_text, audit_actions, error_of
from tests.tracking.conftest import Collector

TRACK = {"userId": "u1", "event": "Signed Up"}


def test_create_returns_the_key_once_and_stores_only_its_hash(cast, write_key):
    key, raw = write_key
    assert raw.startswith("wk_") and len(raw) > 40
    assert key.prefix == raw[:10]
    assert key.key_hash != raw and len(key.key_hash) == 64
    assert raw.lower() not in all_tables_text()  # not in any column of any table
    assert audit_actions(workspace=cast.workspace, action__startswith="writekey") == [
        "writekey.create"
    ]


def test_create_needs_a_name(cast, system_actor):
    with pytest.raises(ValidationError):
        actions.writekey_create(workspace=cast.workspace, actor=system_actor, name="  ")
    assert not WriteKey.objects.exists()


def test_authenticate(write_key):
    key, raw = write_key
    assert actions.writekey_authenticate(raw) == key
    assert actions.writekey_authenticate(raw + "x") is None
    assert actions.writekey_authenticate("") is None
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_an_api_key_is_not_a_write_key(cast, api, collector):
    from siyu.accounts.actions import apikey_create

    _, api_raw = apikey_create(workspace=cast.workspace, actor=cast.owner.actor, name="api")
    response = Collector(api_raw).post("/v1/track", TRACK)
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_revoked_key_gets_401_and_stores_nothing(cast, system_actor, write_key, collector):
    key, _ = write_key
    assert collector.post("/v1/track", TRACK).status_code == 200
    actions.writekey_revoke(workspace=cast.workspace, actor=system_actor, key=key)
    actions.writekey_revoke(workspace=cast.workspace, actor=system_actor, key=key)  # no-op
    response = collector.post("/v1/track", {**TRACK, "messageId": "after-revoke"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert list(Event.objects.values_list("message_id", flat=True)).count("after-revoke") == 0
    assert Event.objects.count() == 1
    assert audit_actions(workspace=cast.workspace, action__startswith="writekey") == [
        "writekey.create",
        "writekey.revoke",
    ]


def test_each_key_writes_only_into_its_own_workspace(cast, collector, outsider_collector):
    collector.post("/v1/track", {**TRACK, "messageId": "same-id"})
    outsider_collector.post("/v1/track", {**TRACK, "messageId": "same-id", "event": "Theirs"})
    ours = Event.objects.get(workspace=cast.workspace)
    theirs = Event.objects.get(workspace=cast.outsider_workspace)
    # the same messageId in two workspaces is two events: dedupe is per workspace
    assert (ours.event, theirs.event) == ("Signed Up", "Theirs")


# --- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def keep_db_open(monkeypatch):
    """`siyu ...` closes every connection when a command ends, which on PostgreSQL would
    end the test's transaction: keep it open."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


def test_cli_create_prints_the_key_on_its_last_line(cast, capsys, keep_db_open):
    main(["siyu", "writekey", "create", "--workspace", "brand", "--name", "小程序"])
    out = capsys.readouterr().out
    raw = out.strip().splitlines()[-1]
    key = actions.writekey_authenticate(raw)
    assert key is not None and key.workspace == cast.workspace and key.name == "小程序"
    rows = cast.workspace and audit_actions(workspace=cast.workspace, action="writekey.create")
    assert rows == ["writekey.create"]
    assert Collector(raw).post("/v1/track", TRACK).status_code == 200


def test_cli_list_and_revoke(cast, write_key):
    key, raw = write_key
    out = io.StringIO()
    call_command("writekey", "list", "--workspace", "brand", stdout=out)
    assert key.prefix in out.getvalue() and "active" in out.getvalue()
    call_command("writekey", "revoke", "--workspace", "brand", "--prefix", key.prefix, stdout=out)
    assert actions.writekey_authenticate(raw) is None
    with pytest.raises(CommandError):
        call_command("writekey", "revoke", "--workspace", "other", "--prefix", key.prefix)


def test_cli_unknown_workspace(db):
    with pytest.raises(CommandError):
        call_command("writekey", "create", "--workspace", "nope", "--name", "x")

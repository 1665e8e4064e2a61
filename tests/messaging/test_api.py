"""The messaging API: channels (credentials encrypted, never returned), templates (checked
and previewed), the reach policy and the outbox; roles enforced, workspaces kept apart."""

import pytest

from siyu.core.models import AuditLog
from siyu.messaging import channels
from siyu.messaging.models import ChannelConfig, MessageTemplate, ReachPolicy
from tests.helpers import all_tables_text, error_of
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-never-in-clear"  # noqa: S105 - a test value


@pytest.fixture(autouse=True)
def recording(monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setattr(
        RecordingTransport, "secret_fields", (channels.base.FieldSpec("access_key_secret", "Key"),)
    )
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )


def _channel(client, **extra):
    body = {"kind": "sms_aliyun", "name": "阿里云短信", "secrets": {"access_key_secret": SECRET}}
    return client.post("/api/v1/channels", {**body, **extra})


def test_channel_secrets_are_encrypted_and_never_returned(api):
    admin = api("admin")
    created = _channel(admin)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secrets_set"] == ["access_key_secret"] and SECRET not in created.content.decode()
    assert body["consent_required"] is True and body["reach"] == "sms"
    assert body["receipt_url"].startswith("http") and "/hooks/channels/" in body["receipt_url"]
    assert SECRET not in all_tables_text()  # encrypted at rest, not in the audit log either
    assert ChannelConfig.objects.get().secrets() == {"access_key_secret": SECRET}
    # an update that does not name the secret keeps it
    changed = admin.patch(f"/api/v1/channels/{body['id']}", {"rate_per_second": 50})
    assert changed.status_code == 200 and changed.json()["rate_per_second"] == 50
    assert ChannelConfig.objects.get().secrets() == {"access_key_secret": SECRET}
    assert AuditLog.objects.filter(action__startswith="channel.").count() == 2


def test_channel_input_errors_name_the_field(api):
    admin = api("admin")
    assert (
        error_of(admin.post("/api/v1/channels", {"kind": "fax", "name": "x"}))["details"]["field"]
        == "kind"
    )
    missing = admin.post("/api/v1/channels", {"kind": "sms_aliyun", "name": "x"})
    assert missing.status_code == 422
    assert error_of(missing)["details"]["field"] == "secrets.access_key_secret"
    unknown = _channel(admin, settings={"colour": "red"})
    assert error_of(unknown)["details"]["field"] == "settings.colour"
    assert _channel(admin).status_code == 201
    assert _channel(admin).status_code == 409  # the name is taken
    assert ChannelConfig.objects.count() == 1


def test_roles_and_workspaces(api):
    assert _channel(api("operator")).status_code == 403
    assert not ChannelConfig.objects.exists()
    channel_id = _channel(api("admin")).json()["id"]
    assert api("analyst").get("/api/v1/channels").status_code == 200
    assert api("agent").get("/api/v1/channels").status_code == 403
    assert api("outsider").get(f"/api/v1/channels/{channel_id}").status_code == 404
    assert api("outsider").get("/api/v1/channels").json() == []
    assert (
        api("operator").patch(f"/api/v1/channels/{channel_id}", {"enabled": False}).status_code
        == 403
    )
    assert ChannelConfig.objects.get().enabled is True


def test_templates_are_checked_and_previewed(api, make_contact):
    operator = api("operator")
    bad = operator.post(
        "/api/v1/templates",
        {"kind": "sms_aliyun", "name": "坏", "content": {"text": "{{ contact.name "}},
    )
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "content.text"
    unknown = operator.post(
        "/api/v1/templates",
        {"kind": "sms_aliyun", "name": "坏", "content": {"text": "{{ password }}"}},
    )
    assert unknown.status_code == 422 and "password" in error_of(unknown)["message"]
    assert not MessageTemplate.objects.exists()
    good = operator.post(
        "/api/v1/templates",
        {"kind": "sms_aliyun", "name": "生日", "content": {"text": "{{ contact.name }}生日快乐"}},
    )
    assert good.status_code == 201
    person = make_contact(name="王芳")
    preview = operator.post(
        "/api/v1/templates/preview",
        {"kind": "sms_aliyun", "content": good.json()["content"], "contact_id": person.pk},
    )
    assert preview.json() == {"rendered": {"text": "王芳生日快乐"}}
    too_long = operator.post(
        "/api/v1/templates/preview",
        {"kind": "sms_aliyun", "content": {"text": "长" * 80}},
    )
    assert too_long.status_code == 422 and error_of(too_long)["details"]["field"] == "text"
    assert (
        api("analyst")
        .post("/api/v1/templates", {"kind": "sms_aliyun", "name": "x", "content": {"text": "x"}})
        .status_code
        == 403
    )


def test_reach_policy(api):
    operator = api("operator")
    answer = operator.put(
        "/api/v1/reach-policy",
        {
            "caps": {"all": {"week": 4}, "sms": {"day": 1}},
            "quiet_start": "21:00",
            "quiet_end": "09:00",
        },
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["caps"] == {"all": {"week": 4}, "sms": {"day": 1}}
    assert answer.json()["timezone"] == "Asia/Shanghai"
    bad = operator.put("/api/v1/reach-policy", {"caps": {"sms": {"month": 3}}})
    assert error_of(bad)["details"]["field"] == "caps.sms.month"
    half = operator.put("/api/v1/reach-policy", {"quiet_start": "21:00"})
    assert error_of(half)["details"]["field"] == "quiet_end"
    assert ReachPolicy.objects.get().caps == {"all": {"week": 4}, "sms": {"day": 1}}


def test_test_send_is_audited(api):
    admin = api("admin")
    channel_id = _channel(admin).json()["id"]
    answer = admin.post(
        f"/api/v1/channels/{channel_id}/test",
        {"address": "+8613800138000", "content": {"text": "测试"}},
    )
    assert answer.json()["outcome"] == "sent"
    assert RecordingTransport.sent[0][1:] == ("+8613800138000", {"text": "测试"})
    assert AuditLog.objects.filter(action="channel.test").count() == 1
    too_long = admin.post(
        f"/api/v1/channels/{channel_id}/test",
        {"address": "+8613800138000", "content": {"text": "长" * 80}},
    )
    assert too_long.status_code == 422 and len(RecordingTransport.sent) == 1


def test_outbox_lists_messages_with_masked_addresses(api, cast, system_actor, make_contact):
    from siyu.contacts.actions.consent import consent_set
    from siyu.messaging import actions, sender

    channel = ChannelConfig.objects.get(pk=_channel(api("admin")).json()["id"])
    template = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_aliyun",
        name="t",
        content={"text": "hi"},
    )
    mine = make_contact(name="甲", phone="13800138001", owner=cast.agent)
    other = make_contact(name="乙", phone="13800138002")
    for person in (mine, other):
        consent_set(
            workspace=cast.workspace,
            actor=system_actor,
            contact=person,
            channel="sms",
            status="granted",
        )
    actions.outbox_enqueue(
        workspace=cast.workspace,
        channel=channel,
        template=template,
        source="broadcast:7",
        contact_ids=[mine.pk, other.pk],
    )
    sender.send_channel(channel.pk)
    page = api("analyst").get("/api/v1/outbox", source="broadcast:7", limit=1)
    first = page.json()
    assert len(first["items"]) == 1 and first["next"]
    rest = api("analyst").get("/api/v1/outbox", source="broadcast:7", cursor=first["next"]).json()
    items = first["items"] + rest["items"]
    assert {i["status"] for i in items} == {"sent"}
    assert all("13800138" not in i["address"] and i["address"] for i in items)
    assert api("outsider").get("/api/v1/outbox").json()["items"] == []


def test_settings_that_cannot_work_name_the_setting(api):
    answer = api("admin").post(
        "/api/v1/channels",
        {
            "kind": "webhook",
            "name": "钩子",
            "settings": {"url": "ftp://crm.example.cn/hook"},
            "secrets": {"signing_secret": "whsec"},
        },
    )
    assert answer.status_code == 422 and error_of(answer)["details"]["field"] == "settings.url"
    assert not ChannelConfig.objects.exists()


def test_rotating_the_key_reencrypts_channel_credentials_and_tokens(api, settings, capsys, cast):
    from cryptography.fernet import Fernet, MultiFernet
    from django.core.management import call_command

    from siyu.core import crypto
    from siyu.core.keys import new_fernet_key
    from siyu.messaging.models import AccessToken

    channel = ChannelConfig.objects.get(pk=_channel(api("admin")).json()["id"])
    AccessToken.objects.create(
        workspace=cast.workspace, channel=channel, token_enc=crypto.encrypt("tok-123")
    )
    old = settings.SIYU_ENCRYPTION_KEYS[0]
    new = new_fernet_key()
    settings.SIYU_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_key", "--reencrypt-only")
    assert "re-encrypted 2 value(s)" in capsys.readouterr().out
    only_new = MultiFernet([Fernet(new)])
    channel.refresh_from_db()
    assert SECRET in only_new.decrypt(channel.secrets_enc.encode()).decode()
    assert only_new.decrypt(AccessToken.objects.get().token_enc.encode()) == b"tok-123"

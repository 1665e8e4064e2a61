"""What comes back: vendor receipts and SMS replies through the signed hook URLs, and the
unsubscribe link of an e-mail."""

import json

import pytest
from django.test import Client

from siyu.contacts.actions.consent import consent_set
from siyu.contacts.models import Consent, ConsentStatus, TimelineEntry
from siyu.messaging import actions, channels, inbound, sender
from siyu.messaging.models import OutboxMessage, OutboxStatus
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db


@pytest.fixture
def sms(cast, system_actor, monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    channel = actions.channel_create(
        workspace=cast.workspace, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    template = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_aliyun",
        name="通知",
        content={"text": "{{ contact.name }}您好"},
    )
    return channel, template


def _sent_to(cast, system_actor, make_contact, channel, template, phones, source="broadcast:1"):
    people = []
    for phone in phones:
        person = make_contact(name="客户", phone=phone)
        consent_set(
            workspace=cast.workspace,
            actor=system_actor,
            contact=person,
            channel="sms",
            status="granted",
        )
        people.append(person)
    actions.outbox_enqueue(
        workspace=cast.workspace,
        channel=channel,
        template=template,
        source=source,
        contact_ids=[p.pk for p in people],
    )
    sender.send_channel(channel.pk)
    return people


def _post(url, payload):
    return Client().post(url, json.dumps(payload), content_type="application/json")


def test_receipts_mark_delivered_and_bounced_once(cast, system_actor, make_contact, sms):
    channel, template = sms
    a, b = _sent_to(
        cast, system_actor, make_contact, channel, template, ["13800138001", "13800138002"]
    )
    va = OutboxMessage.objects.get(contact=a).vendor_id
    vb = OutboxMessage.objects.get(contact=b).vendor_id
    url = inbound.hook_url(channel, "receipts").split("8000", 1)[1]
    answer = _post(
        url,
        [
            {"vendor_id": va, "delivered": True},
            {"vendor_id": vb, "delivered": False, "code": "MK:0001"},
            {"vendor_id": "unknown", "delivered": True},
        ],
    )
    assert answer.status_code == 200 and answer.json()["code"] == 0
    assert OutboxMessage.objects.get(contact=a).status == OutboxStatus.DELIVERED
    bounced = OutboxMessage.objects.get(contact=b)
    assert (bounced.status, bounced.reason) == (OutboxStatus.BOUNCED, "receipt:MK:0001")
    # a repeated receipt changes nothing
    _post(url, [{"vendor_id": vb, "delivered": True}])
    assert OutboxMessage.objects.get(contact=b).status == OutboxStatus.BOUNCED


def test_a_forged_hook_url_is_refused(cast, system_actor, make_contact, sms):
    channel, template = sms
    (a,) = _sent_to(cast, system_actor, make_contact, channel, template, ["13800138001"])
    vendor_id = OutboxMessage.objects.get(contact=a).vendor_id
    answer = _post(
        f"/hooks/channels/{channel.pk}/forged/receipts",
        [{"vendor_id": vendor_id, "delivered": True}],
    )
    assert answer.status_code == 404
    assert OutboxMessage.objects.get(contact=a).status == OutboxStatus.SENT
    answer = _post(
        f"/hooks/channels/{channel.pk}/forged/replies", [{"phone": "13800138001", "text": "TD"}]
    )
    assert answer.status_code == 404
    assert Consent.objects.get(contact=a).status == ConsentStatus.GRANTED


@pytest.mark.parametrize("text", ["TD", " td ", "退订", "T。", "unsubscribe"])
def test_an_unsubscribe_reply_withdraws_sms_consent(cast, system_actor, make_contact, sms, text):
    channel, template = sms
    (a,) = _sent_to(cast, system_actor, make_contact, channel, template, ["13800138001"])
    url = inbound.hook_url(channel, "replies").split("8000", 1)[1]
    assert _post(url, [{"phone": "+8613800138001", "text": text}]).status_code == 200
    consent = Consent.objects.get(contact=a, channel="sms")
    assert consent.status == ConsentStatus.WITHDRAWN and consent.source.startswith("reply")
    # the next broadcast does not reach them
    actions.outbox_enqueue(
        workspace=cast.workspace,
        channel=channel,
        template=template,
        source="broadcast:2",
        contact_ids=[a.pk],
    )
    sender.send_channel(channel.pk)
    message = OutboxMessage.objects.get(contact=a, source="broadcast:2")
    assert (message.status, message.reason) == (OutboxStatus.SUPPRESSED, "no_consent")
    assert len(RecordingTransport.sent) == 1


def test_other_replies_change_nothing(cast, system_actor, make_contact, sms):
    channel, template = sms
    (a,) = _sent_to(cast, system_actor, make_contact, channel, template, ["13800138001"])
    url = inbound.hook_url(channel, "replies").split("8000", 1)[1]
    _post(
        url,
        [
            {"phone": "13800138001", "text": "你好，请问TD是什么"},
            {"phone": "13900000000", "text": "TD"},
        ],
    )
    assert Consent.objects.get(contact=a, channel="sms").status == ConsentStatus.GRANTED


def test_email_carries_a_working_unsubscribe_link(cast, system_actor, make_contact, monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setattr(RecordingTransport, "consent_channel", "email")
    monkeypatch.setattr(RecordingTransport, "address_identity", "email")
    monkeypatch.setitem(
        channels.TRANSPORTS, "email", "tests.messaging.recording.RecordingTransport"
    )
    channel = actions.channel_create(
        workspace=cast.workspace, actor=system_actor, kind="email", name="邮件"
    )
    template = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="email",
        name="周报",
        content={"text": "你好"},
    )
    person = make_contact(name="甲", email="jia@example.cn")
    consent_set(
        workspace=cast.workspace,
        actor=system_actor,
        contact=person,
        channel="email",
        status="granted",
    )
    actions.outbox_enqueue(
        workspace=cast.workspace,
        channel=channel,
        template=template,
        source="broadcast:9",
        contact_ids=[person.pk],
    )
    sender.send_channel(channel.pk)
    ((_, address, content),) = RecordingTransport.sent
    assert address == "jia@example.cn"
    path = content["unsubscribe_url"].split("8000", 1)[1]
    page = Client().get(path)
    assert page.status_code == 200 and "确认退订" in page.content.decode()
    assert Consent.objects.get(contact=person, channel="email").status == ConsentStatus.GRANTED
    done = Client().post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert done.status_code == 200 and "已成功退订" in done.content.decode()
    assert Consent.objects.get(contact=person, channel="email").status == ConsentStatus.WITHDRAWN
    entries = TimelineEntry.objects.filter(contact=person, kind="consent").count()
    Client().post(path)  # again: nothing new
    assert TimelineEntry.objects.filter(contact=person, kind="consent").count() == entries
    assert Client().get(path[:-3] + "xyz").status_code == 404

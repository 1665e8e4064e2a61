"""The outbox sender: guardrails per message, outcomes, retries, quiet hours, recovery after
a sender died, one sender per channel. Uses a recording transport in place of a vendor (the
vendors' own transports are tested against their fake servers in channels/)."""

import datetime

import pytest
from django.utils import timezone

from siyu.contacts.actions.consent import consent_set
from siyu.messaging import actions, channels, sender
from siyu.messaging.channels.base import Outcome, SendResult
from siyu.messaging.models import OutboxMessage, OutboxStatus
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    return RecordingTransport


@pytest.fixture
def setup(cast, system_actor, recording):
    channel = actions.channel_create(
        workspace=cast.workspace, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    template = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_aliyun",
        name="生日",
        content={"text": "{{ contact.name }}，生日快乐"},
    )
    return channel, template


def _person(make_contact, cast, system_actor, name, phone, consent="granted"):
    contact = make_contact(name=name, phone=phone)
    if consent:
        consent_set(
            workspace=cast.workspace,
            actor=system_actor,
            contact=contact,
            channel="sms",
            status=consent,
        )
    return contact


def _queue(cast, channel, template, contacts, source="broadcast:1", due_at=None):
    return actions.outbox_enqueue(
        workspace=cast.workspace,
        channel=channel,
        template=template,
        source=source,
        contact_ids=[c.pk for c in contacts],
        due_at=due_at,
    )


def _status(contact, source="broadcast:1"):
    message = OutboxMessage.objects.get(contact=contact, source=source)
    return message.status, message.reason


def test_sends_each_key_once_and_renders_per_contact(
    cast, system_actor, make_contact, setup, recording
):
    channel, template = setup
    a = _person(make_contact, cast, system_actor, "王芳", "13800138001")
    b = _person(make_contact, cast, system_actor, "李娜", "13800138002")
    assert _queue(cast, channel, template, [a, b]) == 2
    assert _queue(cast, channel, template, [a, b]) == 0  # the same step again adds nothing
    tally = sender.send_channel(channel.pk)
    assert tally.sent == 2
    assert sorted((addr, c["text"]) for _, addr, c in recording.sent) == [
        ("+8613800138001", "王芳，生日快乐"),
        ("+8613800138002", "李娜，生日快乐"),
    ]
    message = OutboxMessage.objects.get(contact=a)
    assert message.status == OutboxStatus.SENT and message.vendor_id.startswith("v-")
    assert (
        message.address_masked != "+8613800138001" and message.content["text"] == "王芳，生日快乐"
    )
    assert sender.send_channel(channel.pk).sent == 0
    assert len(recording.sent) == 2


def test_consent_required_missing_or_withdrawn(cast, system_actor, make_contact, setup, recording):
    channel, template = setup
    granted = _person(make_contact, cast, system_actor, "甲", "13800138001")
    none = _person(make_contact, cast, system_actor, "乙", "13800138002", consent=None)
    withdrawn = _person(make_contact, cast, system_actor, "丙", "13800138003", consent="withdrawn")
    _queue(cast, channel, template, [granted, none, withdrawn])
    tally = sender.send_channel(channel.pk)
    assert (tally.sent, tally.suppressed) == (1, 2)
    assert _status(none) == (OutboxStatus.SUPPRESSED, "no_consent")
    assert _status(withdrawn) == (OutboxStatus.SUPPRESSED, "no_consent")
    assert [addr for _, addr, _ in recording.sent] == ["+8613800138001"]

    # opt-out channel: only a withdrawal stops it
    actions.channel_update(
        workspace=cast.workspace, actor=system_actor, channel=channel, consent_required=False
    )
    _queue(cast, channel, template, [granted, none, withdrawn], source="broadcast:2")
    sender.send_channel(channel.pk)
    assert _status(none, "broadcast:2")[0] == OutboxStatus.SENT
    assert _status(withdrawn, "broadcast:2") == (OutboxStatus.SUPPRESSED, "no_consent")


def test_no_address_template_error_and_limit(cast, system_actor, make_contact, setup, recording):
    channel, template = setup
    no_phone = make_contact(name="无号码")
    consent_set(
        workspace=cast.workspace,
        actor=system_actor,
        contact=no_phone,
        channel="sms",
        status="granted",
    )
    long_name = _person(make_contact, cast, system_actor, "长" * 80, "13800138009")
    _queue(cast, channel, template, [no_phone, long_name])
    broken = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_aliyun",
        name="坏",
        content={"text": "{{ contact.attributes.vip_level }}"},  # not every contact has it
    )
    ok = _person(make_contact, cast, system_actor, "好", "13800138010")
    _queue(cast, channel, broken, [ok], source="broadcast:2")
    sender.send_channel(channel.pk)
    assert _status(no_phone) == (OutboxStatus.SUPPRESSED, "no_address")
    status, reason = _status(long_name)
    assert (status, reason) == (OutboxStatus.FAILED, "content_limit")
    assert OutboxMessage.objects.get(contact=long_name).detail.startswith("text:")
    assert _status(ok, "broadcast:2") == (OutboxStatus.FAILED, "template_error")
    assert "vip_level" in OutboxMessage.objects.get(contact=ok).detail
    assert recording.sent == []


def test_frequency_caps_per_channel_and_within_a_group(
    cast, system_actor, make_contact, setup, recording
):
    channel, template = setup
    actions.policy_update(
        workspace=cast.workspace, actor=system_actor, caps={"sms": {"day": 1}, "all": {"week": 5}}
    )
    person = _person(make_contact, cast, system_actor, "甲", "13800138001")
    _queue(cast, channel, template, [person], source="broadcast:1")
    _queue(cast, channel, template, [person], source="broadcast:2")  # same group
    sender.send_channel(channel.pk)
    statuses = sorted(OutboxMessage.objects.filter(contact=person).values_list("status", "reason"))
    assert statuses == [(OutboxStatus.SENT, ""), (OutboxStatus.SUPPRESSED, "frequency_cap:sms/day")]
    # a day later the cap has room again
    OutboxMessage.objects.filter(status=OutboxStatus.SENT).update(
        sent_at=timezone.now() - datetime.timedelta(hours=25)
    )
    _queue(cast, channel, template, [person], source="broadcast:3")
    sender.send_channel(channel.pk)
    assert _status(person, "broadcast:3") == (OutboxStatus.SENT, "")
    assert len(recording.sent) == 2


def test_quiet_hours_wait_instead_of_dropping(cast, system_actor, make_contact, setup, recording):
    channel, template = setup
    now_local = timezone.now().astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    start = (now_local - datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now_local + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    actions.policy_update(
        workspace=cast.workspace, actor=system_actor, quiet_start=start, quiet_end=end
    )
    person = _person(make_contact, cast, system_actor, "甲", "13800138001")
    _queue(cast, channel, template, [person])
    tally = sender.send_channel(channel.pk)
    message = OutboxMessage.objects.get(contact=person)
    assert tally.waiting == 1 and message.status == OutboxStatus.QUEUED
    assert message.due_at > timezone.now() + datetime.timedelta(minutes=100)
    assert recording.sent == []
    # when they are over, it goes
    actions.policy_update(workspace=cast.workspace, actor=system_actor)
    OutboxMessage.objects.update(due_at=timezone.now())
    sender.send_channel(channel.pk)
    assert _status(person) == (OutboxStatus.SENT, "")


def test_retry_with_backoff_then_give_up_and_permanent_failures(
    cast, system_actor, make_contact, setup, recording
):
    channel, template = setup
    busy = _person(make_contact, cast, system_actor, "忙", "13800138001")
    bad = _person(make_contact, cast, system_actor, "坏", "13800138002")
    recording.answers["+8613800138001"] = SendResult(
        "", Outcome.RETRY, code="isv.BUSINESS_LIMIT_CONTROL", retry_after=120
    )
    recording.answers["+8613800138002"] = SendResult(
        "", Outcome.FAILED, code="isv.MOBILE_NUMBER_ILLEGAL", reason="号码非法"
    )
    _queue(cast, channel, template, [busy, bad])
    sender.send_channel(channel.pk)
    message = OutboxMessage.objects.get(contact=busy)
    assert message.status == OutboxStatus.QUEUED and message.attempts == 1
    assert message.reason == "retry:isv.BUSINESS_LIMIT_CONTROL" and message.sent_at is None
    assert message.due_at >= timezone.now() + datetime.timedelta(seconds=119)
    assert _status(bad) == (OutboxStatus.FAILED, "vendor:isv.MOBILE_NUMBER_ILLEGAL")
    for _ in range(sender.MAX_ATTEMPTS):
        OutboxMessage.objects.filter(contact=busy).update(due_at=timezone.now())
        sender.send_channel(channel.pk)
    message.refresh_from_db()
    assert message.status == OutboxStatus.FAILED
    assert message.reason == "retries_exhausted:isv.BUSINESS_LIMIT_CONTROL"
    assert message.attempts == sender.MAX_ATTEMPTS
    assert recording.sent == []


@pytest.mark.parametrize(
    "vendor_has, can_tell, expected, sends",
    [
        (True, True, (OutboxStatus.SENT, ""), 0),  # the vendor got it: recorded, not resent
        (False, True, (OutboxStatus.SENT, ""), 1),  # it did not: sent now, once
        (False, False, (OutboxStatus.FAILED, "outcome_unknown"), 0),  # nobody can tell
    ],
)
def test_recovers_messages_a_dead_sender_left_in_flight(
    cast, system_actor, make_contact, setup, recording, vendor_has, can_tell, expected, sends
):
    channel, template = setup
    person = _person(make_contact, cast, system_actor, "甲", "13800138001")
    _queue(cast, channel, template, [person])
    message = OutboxMessage.objects.get(contact=person)
    # a sender marked it sending, then died (its lease has run out)
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxStatus.SENDING, sent_at=timezone.now(), attempts=1, content={"text": "甲"}
    )
    if vendor_has:
        recording.vendor_has.add(message.key)
    recording.can_tell = can_tell
    tally = sender.send_channel(channel.pk)
    assert tally.recovered == 1
    assert _status(person) == expected
    assert len(recording.sent) == sends


def test_one_sender_per_channel(cast, system_actor, make_contact, setup, recording):
    channel, template = setup
    person = _person(make_contact, cast, system_actor, "甲", "13800138001")
    _queue(cast, channel, template, [person])
    assert sender.claim_channel(channel.pk, "someone-else")
    assert sender.send_channel(channel.pk).sent == 0
    assert _status(person) == (OutboxStatus.QUEUED, "")
    sender.release_channel(channel.pk, "someone-else")
    assert sender.send_channel(channel.pk).sent == 1


def test_a_template_of_another_kind_is_refused(
    cast, system_actor, setup, monkeypatch, make_contact
):
    from siyu.core.errors import ValidationError

    channel, _ = setup
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_tencent", "tests.messaging.recording.RecordingTransport"
    )
    other = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_tencent",
        name="腾讯",
        content={"text": "hi"},
    )
    person = make_contact(name="甲", phone="13800138001")
    with pytest.raises(ValidationError) as error:
        _queue(cast, channel, other, [person])
    assert error.value.field == "template"
    assert not OutboxMessage.objects.exists()


class InlinePool:
    """The sender's thread pool, inline: the test controls the order of the calls."""

    def __init__(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return [fn(item) for item in items]


def test_a_sender_that_stalls_past_its_lease_sends_nothing_the_new_holder_sends(
    cast, system_actor, make_contact, setup, recording, monkeypatch
):
    from collections import Counter

    from siyu.messaging.models import ChannelConfig

    channel, template = setup
    people = [
        _person(make_contact, cast, system_actor, f"客{i}", f"1380013800{i}") for i in range(3)
    ]
    _queue(cast, channel, template, people)
    monkeypatch.setattr(sender, "ThreadPoolExecutor", InlinePool)
    monkeypatch.setattr(sender, "THREADS", 1)  # the hold is checked between waves of calls
    monkeypatch.setattr(sender.connections, "close_all", lambda: None)
    send, state = RecordingTransport.send, {"stalled": False}

    def send_then_stall(self, batch):
        results = send(self, batch)
        if not state["stalled"]:
            # after its first call the sender stalls past its lease; the worker starts another
            state["stalled"] = True
            ChannelConfig.objects.filter(pk=channel.pk).update(
                send_lease_until=timezone.now() - datetime.timedelta(seconds=1)
            )
            sender.send_channel(channel.pk)
        return results

    monkeypatch.setattr(RecordingTransport, "send", send_then_stall)
    sender.send_channel(channel.pk)
    counts = Counter(key for key, _, _ in recording.sent)
    assert len(counts) == 3 and set(counts.values()) == {1}, counts
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}

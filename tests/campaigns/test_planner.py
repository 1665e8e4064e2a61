"""Broadcast planning: the audience (segments in and out), the holdout, every guardrail in
SQL, the frozen audience and the outbox, the preview, scheduling, cancelling; checked
against a per-contact computation of the same rules."""

import datetime

import pytest
from django.utils import timezone

from siyu.campaigns import actions, planner
from siyu.campaigns.models import AudienceMember, Broadcast, BroadcastStatus
from siyu.contacts.actions.consent import consent_set
from siyu.core.errors import Conflict, ValidationError
from siyu.messaging import actions as messaging
from siyu.messaging import channels, sender
from siyu.messaging.models import OutboxMessage, OutboxStatus
from siyu.segments import actions as segments
from siyu.segments.compiler import sample_bucket
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cast, system_actor, make_contact, monkeypatch):
    """40 contacts: every 4th without a phone, every 5th without consent, every 7th withdrew;
    a VIP segment of the first 30 and a complainers segment of every 6th."""
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    ws, actor = cast.workspace, system_actor
    people = []
    for i in range(40):
        person = make_contact(name=f"客户{i}", phone=None if i % 4 == 3 else f"1380013{i:04d}")
        if i % 7 == 6:
            consent_set(
                workspace=ws, actor=actor, contact=person, channel="sms", status="withdrawn"
            )
        elif i % 5 != 4:
            consent_set(workspace=ws, actor=actor, contact=person, channel="sms", status="granted")
        people.append(person)
    vip = segments.segment_create(
        workspace=ws,
        actor=actor,
        name="VIP",
        kind="static",
        contact_ids=[p.pk for p in people[:30]],
    )
    complainers = segments.segment_create(
        workspace=ws,
        actor=actor,
        name="投诉",
        kind="static",
        contact_ids=[p.pk for i, p in enumerate(people) if i % 6 == 0],
    )
    channel = messaging.channel_create(workspace=ws, actor=actor, kind="sms_aliyun", name="短信")
    template = messaging.template_create(
        workspace=ws, actor=actor, kind="sms_aliyun", name="上新", content={"text": "新品上市"}
    )
    return {
        "people": people,
        "vip": vip,
        "complainers": complainers,
        "channel": channel,
        "template": template,
    }


def _broadcast(cast, system_actor, world, **extra):
    values = {
        "name": "双十一预热",
        "channel_id": world["channel"].pk,
        "template_id": world["template"].pk,
        "include_segments": [world["vip"].pk],
        "exclude_segments": [world["complainers"].pk],
        "holdout_percent": 20,
        **extra,
    }
    return actions.broadcast_create(workspace=cast.workspace, actor=system_actor, **values)


def _expected(world, broadcast_id, holdout_percent=20):
    """The same classification, contact by contact."""
    expected = {}
    for i, person in enumerate(world["people"]):
        if i >= 30 or i % 6 == 0:
            continue
        if sample_bucket(person.pk, f"broadcast:{broadcast_id}") < holdout_percent * 100:
            expected[person.pk] = ("holdout", "")
        elif i % 7 == 6 or i % 5 == 4:
            expected[person.pk] = ("suppressed", "no_consent")
        elif i % 4 == 3:
            expected[person.pk] = ("suppressed", "no_address")
        else:
            expected[person.pk] = ("send", "")
    return expected


def test_plan_freezes_the_audience_and_queues_the_send_group(cast, system_actor, world):
    broadcast = _broadcast(cast, system_actor, world)
    preview = planner.preview(broadcast)
    actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=broadcast)
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING
    (run,) = broadcast.runs.all()
    frozen = {m.contact_id: (m.group, m.reason) for m in AudienceMember.objects.filter(run=run)}
    expected = _expected(world, broadcast.pk)
    assert frozen == expected
    assert 0 < sum(1 for g, _ in expected.values() if g == "holdout") < len(expected)
    queued = set(
        OutboxMessage.objects.filter(source=run.source).values_list("contact_id", flat=True)
    )
    assert queued == {c for c, (g, _) in expected.items() if g == "send"}
    assert run.counts["to_send"] == len(queued) == preview["to_send"]
    assert run.counts["audience"] == 25 == preview["audience"]  # 30 VIPs less 5 complainers
    assert preview["included"] == 30
    assert preview["suppressed"] == run.counts["suppressed"]
    # sending them reaches exactly the send group
    sender.send_channel(world["channel"].pk)
    assert len(RecordingTransport.sent) == len(queued)


def test_frequency_caps_are_applied_to_the_whole_audience(cast, system_actor, world):
    messaging.policy_update(workspace=cast.workspace, actor=system_actor, caps={"sms": {"day": 1}})
    first = _broadcast(cast, system_actor, world, holdout_percent=0, exclude_segments=[])
    actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=first)
    sender.send_channel(world["channel"].pk)
    sent_once = len(RecordingTransport.sent)
    second = _broadcast(
        cast, system_actor, world, holdout_percent=0, exclude_segments=[], name="第二波"
    )
    assert planner.preview(second)["suppressed"]["frequency_cap:sms/day"] == sent_once
    actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=second)
    run = second.runs.get()
    assert run.counts["to_send"] == 0
    assert not OutboxMessage.objects.filter(source=run.source).exists()


def test_quiet_hours_make_the_run_wait(cast, system_actor, world):
    now_local = timezone.now().astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    start = (now_local - datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now_local + datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    messaging.policy_update(
        workspace=cast.workspace, actor=system_actor, quiet_start=start, quiet_end=end
    )
    broadcast = _broadcast(cast, system_actor, world)
    actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=broadcast)
    due = set(OutboxMessage.objects.values_list("due_at", flat=True))
    assert len(due) == 1 and due.pop() > timezone.now() + datetime.timedelta(minutes=50)


def test_a_double_send_plans_once_and_a_replanned_run_adds_nothing(cast, system_actor, world):
    broadcast = _broadcast(cast, system_actor, world)
    actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=broadcast)
    with pytest.raises(Conflict):
        actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=broadcast)
    run = broadcast.runs.get()
    count = OutboxMessage.objects.count()
    AudienceMember.objects.filter(run=run).delete()
    planner.plan_run(run)  # the same run again (a retried task): the keys exist already
    assert OutboxMessage.objects.count() == count


def test_scheduled_and_recurring_runs(cast, system_actor, world):
    later = timezone.now() + datetime.timedelta(hours=2)
    broadcast = _broadcast(cast, system_actor, world)
    actions.broadcast_send(
        workspace=cast.workspace,
        actor=system_actor,
        broadcast=broadcast,
        send_at=later,
        recurrence="daily",
    )
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SCHEDULED and broadcast.next_run_at == later
    assert actions.run_due(broadcast.pk) is None  # not yet due
    assert not OutboxMessage.objects.exists()
    run = actions.run_due(broadcast.pk, now=later + datetime.timedelta(seconds=5))
    assert run.number == 1 and OutboxMessage.objects.filter(source=run.source).exists()
    broadcast.refresh_from_db()
    assert broadcast.next_run_at == later + datetime.timedelta(days=1)
    assert broadcast.status == BroadcastStatus.SCHEDULED
    # a second worker asking at the same moment plans nothing
    assert actions.run_due(broadcast.pk, now=later + datetime.timedelta(seconds=6)) is None
    second = actions.run_due(broadcast.pk, now=later + datetime.timedelta(days=1, seconds=1))
    assert second.number == 2 and second.source.endswith(":2")


def test_cancel_stops_queued_messages(cast, system_actor, world):
    broadcast = _broadcast(cast, system_actor, world)
    actions.broadcast_send(workspace=cast.workspace, actor=system_actor, broadcast=broadcast)
    queued = OutboxMessage.objects.filter(status=OutboxStatus.QUEUED).count()
    assert (
        actions.broadcast_cancel(workspace=cast.workspace, actor=system_actor, broadcast=broadcast)
        == queued
        > 0
    )
    assert set(OutboxMessage.objects.values_list("status", "reason")) == {
        (OutboxStatus.SUPPRESSED, "cancelled")
    }
    sender.send_channel(world["channel"].pk)
    assert RecordingTransport.sent == []
    assert Broadcast.objects.get().status == BroadcastStatus.CANCELLED


def test_bad_input_names_the_field(cast, system_actor, world):
    def field_of(**values):
        with pytest.raises(ValidationError) as error:
            _broadcast(cast, system_actor, world, **values)
        return error.value.field

    assert field_of(include_segments=[999999]) == "include_segments[0]"
    assert field_of(include_segments=[10**20]) == "include_segments"
    assert field_of(holdout_percent=60) == "holdout_percent"
    assert field_of(channel_id=999999) == "channel_id"
    assert field_of(channel_id="") == "channel_id"
    assert field_of(template_id="x") == "template_id"
    assert field_of(exclude_segments=[world["vip"].pk]) == "exclude_segments"
    other_kind = messaging.template_create(
        workspace=cast.workspace, actor=system_actor, kind="webhook", name="钩子", content={}
    )
    assert field_of(template_id=other_kind.pk) == "template_id"
    assert not Broadcast.objects.exists()
    broadcast = _broadcast(cast, system_actor, world)
    with pytest.raises(ValidationError) as error:
        actions.broadcast_send(
            workspace=cast.workspace,
            actor=system_actor,
            broadcast=broadcast,
            send_at=timezone.now() - datetime.timedelta(days=1),
        )
    assert error.value.field == "send_at"
    with pytest.raises(ValidationError) as error:
        actions.broadcast_send(
            workspace=cast.workspace,
            actor=system_actor,
            broadcast=broadcast,
            send_at=timezone.now() + datetime.timedelta(days=1),
            recurrence="weekly",
            weekdays=[8],
        )
    assert error.value.field == "weekdays"
    assert Broadcast.objects.get().status == BroadcastStatus.DRAFT


def test_outsiders_segments_and_channels_are_not_found(cast, system_actor, world):
    other = cast.outsider_workspace
    with pytest.raises(ValidationError) as error:
        actions.broadcast_create(
            workspace=other,
            actor=system_actor,
            name="x",
            channel_id=world["channel"].pk,
            template_id=world["template"].pk,
        )
    assert error.value.field == "channel_id"
    assert not Broadcast.objects.exists()


def test_the_worker_plans_due_runs_and_marks_broadcasts_done(cast, system_actor, world):
    from siyu.campaigns import scheduling

    soon = timezone.now() + datetime.timedelta(seconds=1)
    broadcast = _broadcast(cast, system_actor, world)
    actions.broadcast_send(
        workspace=cast.workspace, actor=system_actor, broadcast=broadcast, send_at=soon
    )
    assert scheduling.plan_due() == 0
    Broadcast.objects.update(next_run_at=timezone.now() - datetime.timedelta(seconds=1))
    assert scheduling.plan_due() == 1
    assert Broadcast.objects.get().status == BroadcastStatus.SENDING
    assert scheduling.mark_done() == 0  # messages still queued
    sender.send_channel(world["channel"].pk)
    assert scheduling.mark_done() == 1
    assert Broadcast.objects.get().status == BroadcastStatus.DONE

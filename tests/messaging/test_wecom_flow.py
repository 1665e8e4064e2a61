"""A WeCom customer mass send through the outbox against the fake WeCom: one task for the
group, the staff member confirms it, the worker asks for each customer's result; and the
per-customer mass-send cap."""

import pytest

from siyu.messaging import actions, sender
from siyu.messaging.models import OutboxMessage, OutboxStatus
from siyu.messaging.results import channels_to_poll, poll_results
from tests.messaging.fakes import wecom as fake_wecom
from tests.messaging.fakes.wecom import FakeWecom


@pytest.fixture
def fake(settings):
    with FakeWecom() as server:
        settings.SIYU_WECOM_URL = server.url
        yield server


@pytest.mark.django_db(transaction=True)
def test_mass_send_confirmed_then_results_per_customer(cast, system_actor, make_contact, fake):
    ws = cast.workspace
    channel = actions.channel_create(
        workspace=ws,
        actor=system_actor,
        kind="wecom",
        name="企微",
        settings={
            "corp_id": fake_wecom.CORP_ID,
            "agent_id": fake_wecom.AGENT_ID,
            "default_sender": "zhangsan",
            "mass_send_cap": 1,
            "mass_send_cap_days": 1,
        },
        secrets={"contact_secret": fake_wecom.CONTACT_SECRET, "app_secret": fake_wecom.APP_SECRET},
    )
    template = actions.template_create(
        workspace=ws,
        actor=system_actor,
        kind="wecom",
        name="新品",
        content={"text": "新品到店，欢迎品尝"},
    )
    people = [make_contact(name=f"客{i}", wecom_external_userid=f"wm{i:03d}") for i in range(5)]
    actions.outbox_enqueue(
        workspace=ws,
        channel=channel,
        template=template,
        source="broadcast:1",
        contact_ids=[p.pk for p in people],
    )
    sender.send_channel(channel.pk)  # (the task started on commit may have sent them already)
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}
    vendor_ids = set(OutboxMessage.objects.values_list("vendor_id", flat=True))
    assert len(vendor_ids) == 1 and len(fake.tasks) == 1  # one task to confirm, not five
    (msgid,) = vendor_ids
    assert channels_to_poll() == [channel.pk]
    assert poll_results(channel) == 0  # not confirmed yet: nothing final
    fake.confirm(msgid, failed={"wm001": 2, "wm002": 3})
    assert poll_results(channel) == 5
    statuses = dict(OutboxMessage.objects.values_list("contact_id", "status"))
    reasons = dict(OutboxMessage.objects.values_list("contact_id", "reason"))
    assert statuses[people[0].pk] == OutboxStatus.DELIVERED
    assert (statuses[people[1].pk], reasons[people[1].pk]) == (
        OutboxStatus.BOUNCED,
        "receipt:not_friend",
    )
    assert reasons[people[2].pk] == "receipt:receive_limit"
    assert poll_results(channel) == 0  # asking again changes nothing
    # WeCom lets a customer receive one mass send a day (the channel's cap)
    actions.outbox_enqueue(
        workspace=ws,
        channel=channel,
        template=template,
        source="broadcast:2",
        contact_ids=[people[0].pk],
    )
    sender.send_channel(channel.pk)
    second = OutboxMessage.objects.get(source="broadcast:2")
    assert (second.status, second.reason) == (OutboxStatus.SUPPRESSED, "frequency_cap:wecom/mass")
    assert len(fake.tasks) == 1

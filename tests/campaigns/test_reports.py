"""A run's report: messages by status and reason, and conversion of the targeted against the
holdout with the uplift's 95% interval, computed here by hand for comparison."""

import datetime
import math

import pytest
from django.utils import timezone

from siyu.campaigns import actions, reports
from siyu.campaigns.models import AudienceMember
from siyu.contacts.actions.consent import consent_set
from siyu.contacts.models import Contact
from siyu.messaging import actions as messaging
from siyu.messaging import channels, sender
from siyu.segments import actions as segments
from siyu.tracking.models import Order
from tests.helpers import processed_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_run(cast, system_actor, monkeypatch, make_contact):
    from tests.messaging.recording import RecordingTransport

    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    ws = cast.workspace
    reachable = [make_contact(name=f"会员{i}", phone=f"1380013{i:04d}") for i in range(10)]
    people = reachable + Contact.objects.bulk_create(
        [Contact(workspace=ws, name=f"客户{i}") for i in range(290)]
    )
    for person in reachable:
        consent_set(
            workspace=ws, actor=system_actor, contact=person, channel="sms", status="granted"
        )
    everyone = segments.segment_create(
        workspace=ws,
        actor=system_actor,
        name="全部",
        kind="static",
        contact_ids=[p.pk for p in people],
    )
    channel = messaging.channel_create(
        workspace=ws, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    template = messaging.template_create(
        workspace=ws, actor=system_actor, kind="sms_aliyun", name="t", content={"text": "hi"}
    )
    broadcast = actions.broadcast_create(
        workspace=ws,
        actor=system_actor,
        name="复购",
        channel_id=channel.pk,
        template_id=template.pk,
        include_segments=[everyone.pk],
        holdout_percent=50,
    )
    actions.broadcast_send(workspace=ws, actor=system_actor, broadcast=broadcast)
    sender.send_channel(channel.pk)
    return broadcast.runs.get()


def _order(contact_id, when, fen, n):
    Order.objects.create(
        workspace_id=1 if False else Contact.objects.get(pk=contact_id).workspace_id,
        contact_id=contact_id,
        external_id=f"o{n}",
        status="completed",
        total_fen=fen,
        placed_at=when,
    )


def test_uplift_against_the_holdout(sent_run):
    members = list(AudienceMember.objects.filter(run=sent_run).order_by("contact_id"))
    targeted = [m.contact_id for m in members if m.group != "holdout"]
    holdout = [m.contact_id for m in members if m.group == "holdout"]
    assert len(targeted) > 100 and len(holdout) > 100
    after = sent_run.planned_at + datetime.timedelta(hours=5)
    n = 0
    for i, contact_id in enumerate(targeted):
        if i % 3 == 0:  # a third of the targeted buy
            _order(contact_id, after, 10_000, n := n + 1)
    for i, contact_id in enumerate(holdout):
        if i % 10 == 0:  # a tenth of the holdout
            _order(contact_id, after, 10_000, n := n + 1)
    # outside the window: before the run, and after the attribution days
    _order(holdout[1], sent_run.planned_at - datetime.timedelta(hours=1), 99_900, n := n + 1)
    _order(holdout[2], sent_run.planned_at + datetime.timedelta(days=4), 99_900, n := n + 1)

    report = reports.run_report(sent_run)
    conv = report["conversion"]
    t_conv = len(range(0, len(targeted), 3))
    h_conv = len(range(0, len(holdout), 10))
    assert conv["targeted"]["n"] == len(targeted) and conv["targeted"]["converted"] == t_conv
    assert conv["holdout"]["n"] == len(holdout) and conv["holdout"]["converted"] == h_conv
    assert conv["targeted"]["revenue_fen"] == t_conv * 10_000
    assert conv["holdout"]["revenue_fen"] == h_conv * 10_000
    p1, p2 = t_conv / len(targeted), h_conv / len(holdout)
    se = math.sqrt(p1 * (1 - p1) / len(targeted) + p2 * (1 - p2) / len(holdout))
    uplift = conv["uplift"]
    assert uplift["absolute"] == pytest.approx(p1 - p2)
    assert uplift["ci95"] == pytest.approx([p1 - p2 - 1.96 * se, p1 - p2 + 1.96 * se], rel=1e-3)
    assert uplift["significant"] is True
    assert uplift["relative"] == pytest.approx(p1 / p2 - 1)
    # the funnel covers the targeted: sent or suppressed (no phone, no consent)
    funnel = report["funnel"]
    assert sum(funnel["suppressed"].values()) + funnel["to_send"] == len(targeted)
    assert funnel["holdout"] == len(holdout)
    assert 0 < funnel["to_send"] <= 10
    assert report["messages"]["by_status"] == {"sent": funnel["to_send"]}


def test_an_event_goal_and_no_holdout(cast, system_actor, sent_run):
    broadcast = sent_run.broadcast
    broadcast.goal_event = "Coupon Claimed"
    broadcast.save()
    member = AudienceMember.objects.filter(run=sent_run).exclude(group="holdout").first()
    processed_event(
        sent_run.workspace,
        member.contact_id,
        message_id="m1",
        type="track",
        event="Coupon Claimed",
        timestamp=sent_run.planned_at + datetime.timedelta(minutes=3),
        received_at=timezone.now(),
    )
    conv = reports.run_report(sent_run)["conversion"]
    assert conv["targeted"]["converted"] == 1 and conv["holdout"]["converted"] == 0
    assert reports.uplift({"n": 10, "converted": 1}, {"n": 0, "converted": 0}) is None

"""Journeys: graphs checked with paths, entries from segments, dates, events and the API,
every step kind, durable timers moved by the worker's batches, goals, holdouts, versions."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from siyu.campaigns import journey_actions as actions
from siyu.campaigns.journey_engine import advance
from siyu.campaigns.journey_events import after_events_processed
from siyu.campaigns.journey_models import (
    EnrollmentStatus,
    JourneyEnrollment,
    JourneyStepStat,
)
from siyu.contacts import actions as contacts
from siyu.contacts.models import ContactTag
from siyu.core.errors import Conflict, ValidationError
from siyu.messaging import actions as messaging
from siyu.messaging import channels
from siyu.messaging.models import OutboxMessage
from siyu.segments import actions as segments
from siyu.tracking.models import Order
from tests.helpers import processed_event
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture
def kit(cast, system_actor, monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    ws = cast.workspace
    channel = messaging.channel_create(
        workspace=ws, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    hello = messaging.template_create(
        workspace=ws,
        actor=system_actor,
        kind="sms_aliyun",
        name="问候",
        content={"text": "好久不见"},
    )
    coupon = messaging.template_create(
        workspace=ws,
        actor=system_actor,
        kind="sms_aliyun",
        name="券",
        content={"text": "送你一张券"},
    )
    lapsed = segments.segment_create(
        workspace=ws, actor=system_actor, name="沉睡客户", kind="static"
    )
    return {"channel": channel.pk, "hello": hello.pk, "coupon": coupon.pk, "lapsed": lapsed}


def win_back(kit):
    return {
        "trigger": {"type": "segment_entered", "segment_id": kit["lapsed"].pk},
        "start": "hello",
        "steps": {
            "hello": {
                "type": "send",
                "channel_id": kit["channel"],
                "template_id": kit["hello"],
                "next": "wait",
            },
            "wait": {"type": "wait", "duration": {"days": 3}, "next": "bought"},
            "bought": {
                "type": "branch",
                "yes": None,
                "no": "coupon",
                "rule": {
                    "type": "orders",
                    "metric": "count",
                    "op": "gte",
                    "value": 1,
                    "window": {"last_days": 3},
                },
            },
            "coupon": {"type": "send", "channel_id": kit["channel"], "template_id": kit["coupon"]},
        },
    }


def _live(cast, system_actor, graph, **settings):
    journey = actions.journey_create(
        workspace=cast.workspace, actor=system_actor, name="召回", graph=graph, **settings
    )
    return actions.journey_set_status(
        workspace=cast.workspace, actor=system_actor, journey=journey, status="active"
    )


def _walk(contact, journey):
    return JourneyEnrollment.objects.get(contact=contact, journey=journey)


def test_graph_errors_name_their_path(cast, system_actor, kit):
    def path_of(change):
        graph = win_back(kit)
        change(graph)
        with pytest.raises(ValidationError) as error:
            actions.journey_create(
                workspace=cast.workspace, actor=system_actor, name="x", graph=graph
            )
        return error.value.field

    assert path_of(lambda g: g["steps"]["wait"].update(next="nowhere")) == "graph.steps.wait.next"
    assert path_of(lambda g: g["steps"]["coupon"].update(next="hello")) == "graph.steps.coupon"
    assert path_of(lambda g: g.update(start="wait")) == "graph.steps.hello"  # unreachable
    assert path_of(lambda g: g["steps"]["wait"].update(duration={"weeks": 1})) == (
        "graph.steps.wait.duration.weeks"
    )
    assert path_of(lambda g: g["steps"]["bought"]["rule"].update(op="most")) == (
        "graph.steps.bought.rule.op"
    )
    assert path_of(lambda g: g["steps"]["hello"].update(template_id=999999)) == (
        "graph.steps.hello.template_id"
    )
    assert path_of(lambda g: g["trigger"].update(segment_id=999999)) == "graph.trigger.segment_id"
    assert (
        path_of(
            lambda g: g["steps"].update(
                s={
                    "type": "split",
                    "branches": [{"percent": 60, "next": None}, {"percent": 30, "next": None}],
                }
            )
        )
        == "graph.steps.s.branches"
    )


def test_win_back_journey(cast, system_actor, kit, make_contact):
    journey = _live(cast, system_actor, win_back(kit), goal_event="Order Completed")
    buyer, sleeper = (
        make_contact(name="回头客", phone="13800138001"),
        make_contact(name="沉睡者", phone="13800138002"),
    )
    segments.static_members_change(
        workspace=cast.workspace,
        actor=system_actor,
        segment=kit["lapsed"],
        add=[buyer.pk, sleeper.pk],
    )
    now = timezone.now()
    result = actions.journeys_tick(now)
    assert result["entered"] == 2 and result["steps"] == 4  # hello, then the wait's timer
    hello = OutboxMessage.objects.filter(source=f"journey:{journey.pk}:hello")
    assert set(hello.values_list("contact_id", flat=True)) == {buyer.pk, sleeper.pk}
    walk = _walk(sleeper, journey)
    assert walk.step == "wait" and walk.waiting
    assert walk.wake_at == now + datetime.timedelta(days=3)
    assert advance(now + datetime.timedelta(days=2)) == 0  # nothing due before the timer
    Order.objects.create(
        workspace=cast.workspace,
        contact=buyer,
        external_id="o1",
        status="completed",
        total_fen=9900,
        placed_at=now + datetime.timedelta(days=1),
    )
    later = now + datetime.timedelta(days=3, minutes=1)
    advance(later)
    assert _walk(buyer, journey).status == EnrollmentStatus.COMPLETED
    assert _walk(sleeper, journey).status == EnrollmentStatus.COMPLETED
    coupons = OutboxMessage.objects.filter(source=f"journey:{journey.pk}:coupon")
    assert list(coupons.values_list("contact_id", flat=True)) == [sleeper.pk]
    stats = dict(JourneyStepStat.objects.values_list("step", "entered"))
    assert stats == {"hello": 2, "wait": 2, "bought": 2, "coupon": 1}
    # entering the segment again (once only) adds no second walk
    segments.static_members_change(
        workspace=cast.workspace, actor=system_actor, segment=kit["lapsed"], remove=[buyer.pk]
    )
    segments.static_members_change(
        workspace=cast.workspace, actor=system_actor, segment=kit["lapsed"], add=[buyer.pk]
    )
    assert actions.journeys_tick(later)["entered"] == 0


def test_birthday_journey_enters_on_the_day_once_a_year(cast, system_actor, kit, make_contact):
    graph = {
        "trigger": {"type": "date", "field": "birthday", "offset_days": 0, "at": "09:00"},
        "start": "wish",
        "steps": {
            "wish": {"type": "send", "channel_id": kit["channel"], "template_id": kit["hello"]}
        },
    }
    journey = _live(cast, system_actor, graph, reentry_days=300)
    today = timezone.now().astimezone(SHANGHAI).date()
    born_today = make_contact(name="寿星", phone="13800138001")
    born_tomorrow = make_contact(name="明天", phone="13800138002")
    for person, day in ((born_today, today), (born_tomorrow, today + datetime.timedelta(days=1))):
        person.birthday = (
            day.replace(year=1990)
            if not (day.month == 2 and day.day == 29)
            else (day.replace(year=1992))
        )
        person.save(update_fields=["birthday"])
    journey.refresh_from_db()
    run_at = journey.next_date_run_at
    assert run_at.astimezone(SHANGHAI).time() == datetime.time(9, 0)
    assert actions.journeys_tick(run_at - datetime.timedelta(minutes=1))["entered"] == 0
    at_nine = datetime.datetime.combine(today, datetime.time(9, 0, 30), tzinfo=SHANGHAI)
    journey.next_date_run_at = at_nine - datetime.timedelta(seconds=30)
    journey.save(update_fields=["next_date_run_at"])
    result = actions.journeys_tick(at_nine)
    assert result["entered"] == 1
    assert list(OutboxMessage.objects.values_list("contact_id", flat=True)) == [born_today.pk]
    assert _walk(born_today, journey).status == EnrollmentStatus.COMPLETED
    journey.refresh_from_db()
    assert journey.next_date_run_at > at_nine


def test_wait_for_an_event_or_time_out(cast, system_actor, kit, make_contact):
    graph = {
        "trigger": {"type": "api"},
        "start": "wait",
        "steps": {
            "wait": {
                "type": "wait",
                "until_event": {
                    "event": "Coupon Claimed",
                    "where": [{"property": "value", "op": "gte", "value": 10}],
                },
                "timeout": {"days": 2},
                "next": "thanks",
                "timeout_next": "nudge",
            },
            "thanks": {"type": "send", "channel_id": kit["channel"], "template_id": kit["hello"]},
            "nudge": {"type": "send", "channel_id": kit["channel"], "template_id": kit["coupon"]},
        },
    }
    journey = _live(cast, system_actor, graph)
    quick, slow = (
        make_contact(name="快", phone="13800138001"),
        make_contact(name="慢", phone="13800138002"),
    )
    assert (
        actions.journey_enter(
            workspace=cast.workspace,
            actor=system_actor,
            journey=journey,
            contact_ids=[quick.pk, slow.pk],
        )
        == 2
    )
    now = timezone.now()
    advance(now)
    assert _walk(quick, journey).waiting_for == "Coupon Claimed"
    small = processed_event(
        cast.workspace,
        quick,
        message_id="e1",
        type="track",
        event="Coupon Claimed",
        properties={"value": 5},
        timestamp=now,
        received_at=now,
    )
    after_events_processed(cast.workspace, [small.pk])
    assert _walk(quick, journey).step == "wait"  # its filter did not match
    big = processed_event(
        cast.workspace,
        quick,
        message_id="e2",
        type="track",
        event="Coupon Claimed",
        properties={"value": 20},
        timestamp=now,
        received_at=now,
    )
    after_events_processed(cast.workspace, [big.pk])
    assert _walk(quick, journey).step == "thanks"
    advance(now + datetime.timedelta(minutes=1))
    advance(now + datetime.timedelta(days=2, minutes=1))
    sources = dict(OutboxMessage.objects.values_list("contact_id", "source"))
    assert sources == {
        quick.pk: f"journey:{journey.pk}:thanks",
        slow.pk: f"journey:{journey.pk}:nudge",
    }


def test_goal_exits_and_the_holdout_is_measured(cast, system_actor, kit, make_contact):
    graph = {
        "trigger": {"type": "api"},
        "start": "wait",
        "steps": {
            "wait": {"type": "wait", "duration": {"days": 1}, "next": "send"},
            "send": {"type": "send", "channel_id": kit["channel"], "template_id": kit["hello"]},
        },
    }
    journey = _live(cast, system_actor, graph, goal_event="Order Completed", holdout_percent=50)
    people = [make_contact(name=f"客{i}", phone=f"138001380{i:02d}") for i in range(40)]
    actions.journey_enter(
        workspace=cast.workspace,
        actor=system_actor,
        journey=journey,
        contact_ids=[p.pk for p in people],
    )
    walks = {w.contact_id: w for w in JourneyEnrollment.objects.filter(journey=journey)}
    held = [c for c, w in walks.items() if w.status == EnrollmentStatus.HOLDOUT]
    active = [c for c, w in walks.items() if w.status == EnrollmentStatus.ACTIVE]
    assert held and active and not any(walks[c].wake_at for c in held)
    now = timezone.now()
    advance(now)
    events = [
        processed_event(
            cast.workspace,
            c,
            message_id=f"o{c}",
            type="track",
            event="Order Completed",
            properties={},
            timestamp=now + datetime.timedelta(hours=1),
            received_at=now,
        )
        for c in (active[0], held[0])
    ]
    after_events_processed(cast.workspace, [e.pk for e in events])
    assert _walk(active[0], journey).status == EnrollmentStatus.CONVERTED
    held_walk = _walk(held[0], journey)
    assert held_walk.status == EnrollmentStatus.HOLDOUT and held_walk.converted_at
    advance(now + datetime.timedelta(days=1, minutes=1))
    sent_to = set(OutboxMessage.objects.values_list("contact_id", flat=True))
    assert sent_to == set(active) - {active[0]}  # the converted and the held out get nothing
    # the report: conversions and revenue (orders within the window after entry) per arm
    from siyu.campaigns.journey_reports import journey_report

    for n, contact_id in enumerate((active[0], held[0], held[1])):
        Order.objects.create(
            workspace=cast.workspace,
            contact_id=contact_id,
            external_id=f"j{n}",
            status="completed",
            total_fen=5000 * (n + 1),
            placed_at=now + datetime.timedelta(hours=2),
        )
    Order.objects.create(
        workspace=cast.workspace,
        contact_id=active[1],
        external_id="late",
        status="completed",
        total_fen=99_900,
        placed_at=now + datetime.timedelta(days=9),
    )  # after the window
    conversion = journey_report(journey)["conversion"]
    assert conversion["targeted"]["converted"] == 1 and conversion["holdout"]["converted"] == 1
    assert conversion["targeted"]["revenue_fen"] == 5000
    assert conversion["holdout"]["revenue_fen"] == 10000 + 15000
    assert conversion["uplift"] is not None


def test_split_tag_attribute_and_versions(cast, system_actor, kit, make_contact):
    ws = cast.workspace
    group = contacts.tag_group_create(workspace=ws, actor=system_actor, name="旅程")
    tag = contacts.tag_create(workspace=ws, actor=system_actor, group=group, name="A组")
    contacts.attribute_define(
        workspace=ws, actor=system_actor, key="vip_level", label="会员等级", type="number"
    )
    graph = {
        "trigger": {"type": "api"},
        "start": "split",
        "steps": {
            "split": {
                "type": "split",
                "branches": [{"percent": 50, "next": "tag"}, {"percent": 50, "next": None}],
            },
            "tag": {"type": "tag", "add": [tag.pk], "next": "level"},
            "level": {"type": "attribute", "key": "vip_level", "value": 3},
        },
    }
    journey = _live(cast, system_actor, graph)
    people = [make_contact(name=f"客{i}") for i in range(60)]
    actions.journey_enter(
        workspace=ws, actor=system_actor, journey=journey, contact_ids=[p.pk for p in people]
    )
    for _ in range(3):
        advance(timezone.now())
    tagged = set(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True))
    assert 15 < len(tagged) < 45  # about half, by a stable hash
    levels = {
        p.pk: p.attributes.get("vip_level")
        for p in type(people[0]).objects.filter(pk__in=[p.pk for p in people])
    }
    assert {c for c, v in levels.items() if v is not None} == tagged
    assert {v for v in levels.values() if v is not None} == {3}
    assert set(JourneyEnrollment.objects.values_list("status", flat=True)) == {"completed"}
    # a new version: who is inside stays on v1, new entries take v2
    graph2 = {
        **graph,
        "steps": {
            **graph["steps"],
            "split": {
                "type": "split",
                "branches": [{"percent": 10, "next": "tag"}, {"percent": 90, "next": None}],
            },
        },
    }
    journey = actions.journey_update(
        workspace=ws, actor=system_actor, journey=journey, graph=graph2
    )
    assert journey.live_version.number == 2
    assert set(JourneyEnrollment.objects.values_list("version__number", flat=True)) == {1}
    journey = actions.journey_set_status(
        workspace=ws, actor=system_actor, journey=journey, status="archived"
    )
    with pytest.raises(Conflict):
        actions.journey_update(workspace=ws, actor=system_actor, journey=journey, name="改名")
    with pytest.raises(Conflict):
        actions.journey_enter(
            workspace=ws, actor=system_actor, journey=journey, contact_ids=[people[0].pk]
        )


def test_a_merge_moves_walks_and_messages(cast, system_actor, kit, make_contact):
    from siyu.contacts.actions.merge import contacts_merge

    graph = {
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": {
            "hello": {
                "type": "send",
                "channel_id": kit["channel"],
                "template_id": kit["hello"],
                "next": "wait",
            },
            "wait": {"type": "wait", "duration": {"days": 1}},
        },
    }
    journey = _live(cast, system_actor, graph)
    keep, other = make_contact(name="甲", phone="13800138001"), make_contact(name="乙")
    actions.journey_enter(
        workspace=cast.workspace,
        actor=system_actor,
        journey=journey,
        contact_ids=[keep.pk, other.pk],
    )
    advance(timezone.now())
    contacts_merge(workspace=cast.workspace, actor=system_actor, survivor=keep, other=other)
    walks = JourneyEnrollment.objects.filter(journey=journey)
    assert set(walks.values_list("contact_id", "status")) == {
        (keep.pk, EnrollmentStatus.ACTIVE),
        (keep.pk, EnrollmentStatus.EXITED),
    }
    assert set(OutboxMessage.objects.values_list("contact_id", flat=True)) == {keep.pk}
    assert OutboxMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_take_each_step_once(cast, system_actor, kit, make_contact):
    import threading

    from django.db import connection

    graph = {
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": {
            "hello": {"type": "send", "channel_id": kit["channel"], "template_id": kit["hello"]}
        },
    }
    journey = _live(cast, system_actor, graph)
    people = [make_contact(name=f"客{i}") for i in range(300)]
    actions.journey_enter(
        workspace=cast.workspace,
        actor=system_actor,
        journey=journey,
        contact_ids=[p.pk for p in people],
    )
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself; the advisory lock is PostgreSQL's")
    from siyu.campaigns import journey_engine

    journey_engine.BATCH, taken, errors = 50, [], []

    def worker():
        try:
            taken.append(journey_engine.advance_workspace(cast.workspace.pk))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        journey_engine.BATCH = 5000
    assert errors == [] and sum(taken) == 300
    assert OutboxMessage.objects.count() == 300
    assert JourneyStepStat.objects.get(step="hello").entered == 300


def test_a_journey_cannot_go_live_on_a_disabled_channel(cast, system_actor, kit):
    from siyu.messaging.models import ChannelConfig

    journey = actions.journey_create(
        workspace=cast.workspace, actor=system_actor, name="召回", graph=win_back(kit)
    )
    ChannelConfig.objects.filter(pk=kit["channel"]).update(enabled=False)
    with pytest.raises(ValidationError) as error:
        actions.journey_set_status(
            workspace=cast.workspace, actor=system_actor, journey=journey, status="active"
        )
    assert error.value.field == "graph.steps.hello.channel_id"
    journey.refresh_from_db()
    assert journey.status == "draft"


def test_a_message_steps_conversions_and_revenue(cast, system_actor, kit, make_contact):
    from siyu.campaigns.journey_reports import journey_report
    from siyu.contacts.actions.consent import consent_set
    from siyu.messaging import sender

    graph = {
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": {
            "hello": {"type": "send", "channel_id": kit["channel"], "template_id": kit["hello"]}
        },
    }
    journey = _live(cast, system_actor, graph, goal_event="Order Completed")
    people = [make_contact(name=f"客{i}", phone=f"1380013800{i}") for i in range(3)]
    for person in people[:2]:
        consent_set(
            workspace=cast.workspace,
            actor=system_actor,
            contact=person,
            channel="sms",
            status="granted",
        )
    actions.journey_enter(
        workspace=cast.workspace,
        actor=system_actor,
        journey=journey,
        contact_ids=[p.pk for p in people],
    )
    advance(timezone.now())
    sender.send_channel(kit["channel"])
    sent_at = OutboxMessage.objects.get(contact=people[0]).sent_at
    for n, (person, hours, fen) in enumerate(
        [(people[0], 1, 8800), (people[1], -1, 9900), (people[2], 1, 7700)]
    ):  # after the message; before it; no message (no consent)
        Order.objects.create(
            workspace=cast.workspace,
            contact=person,
            external_id=f"s{n}",
            status="completed",
            total_fen=fen,
            placed_at=sent_at + datetime.timedelta(hours=hours),
        )
    step = journey_report(journey)["messages"]["hello"]
    assert step["by_status"] == {"sent": 2, "suppressed": 1}
    assert (step["converted"], step["revenue_fen"]) == (1, 8800)


def test_resuming_a_date_journey_waits_for_its_time_of_day(cast, system_actor, kit):
    graph = {
        "trigger": {"type": "date", "field": "birthday", "offset_days": 0, "at": "09:00"},
        "start": "wish",
        "steps": {
            "wish": {"type": "send", "channel_id": kit["channel"], "template_id": kit["hello"]}
        },
    }
    journey = _live(cast, system_actor, graph)
    actions.journey_set_status(
        workspace=cast.workspace, actor=system_actor, journey=journey, status="paused"
    )
    journey.refresh_from_db()
    journey.next_date_run_at = timezone.now() - datetime.timedelta(days=3)  # missed while paused
    journey.save(update_fields=["next_date_run_at"])
    journey = actions.journey_set_status(
        workspace=cast.workspace, actor=system_actor, journey=journey, status="active"
    )
    journey.refresh_from_db()
    assert journey.next_date_run_at > timezone.now()
    assert journey.next_date_run_at.astimezone(SHANGHAI).time() == datetime.time(9, 0)

"""Real-time segments follow processed events at once; merges carry history and static
memberships; the schedule is claimed once however many workers ask."""

import datetime
import itertools

import pytest
from django.utils import timezone

from siyu.contacts import actions as contact_actions
from siyu.contacts.actions.identity import find_identity
from siyu.segments import actions
from siyu.segments.models import RefreshSchedule, SegmentChange, SegmentMember
from siyu.segments.refresh import claim_due, refresh_workspace
from siyu.tracking import actions as tracking_actions
from tests.tracking.conftest import Collector

_ids = itertools.count()
VIEWED = {
    "type": "event",
    "event": "Product Viewed",
    "op": "gte",
    "value": 2,
    "window": {"last_days": 7},
}


@pytest.fixture
def send(cast, system_actor, django_capture_on_commit_callbacks):
    _, raw = tracking_actions.writekey_create(
        workspace=cast.workspace, actor=system_actor, name="site"
    )
    collector = Collector(raw)

    def post(*messages):
        with django_capture_on_commit_callbacks(execute=True):
            response = collector.post("/v1/batch", {"batch": list(messages)})
        assert response.status_code == 200, response.content
        assert response.json().get("rejected", []) == []

    return post


def viewed(user: str) -> dict:
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": user,
        "messageId": f"rt-{next(_ids)}",
        "timestamp": timezone.now().isoformat(),
        "properties": {"product_id": "sku-1"},
    }


def member_ids(segment) -> set[int]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True))


def test_a_real_time_segment_follows_each_processed_event(cast, system_actor, send):
    live = actions.segment_create(
        workspace=cast.workspace, actor=system_actor, name="逛了两次", rule=VIEWED, realtime=True
    )
    batch = actions.segment_create(
        workspace=cast.workspace, actor=system_actor, name="逛了两次（定时）", rule=VIEWED
    )
    send(viewed("u-1"))
    contact = find_identity(cast.workspace, "user_id", "u-1", "").contact
    assert member_ids(live) == set()
    send(viewed("u-1"))
    assert member_ids(live) == {contact.pk}
    entered = SegmentChange.objects.filter(segment=live, contact=contact, kind="entered")
    assert entered.count() == 1
    # the scheduled segment waits for its refresh
    assert member_ids(batch) == set()
    refresh_workspace(cast.workspace)
    assert member_ids(batch) == {contact.pk}
    # and its stage was scored in real time too
    assert contact.score.stage == "new"


def test_without_real_time_segments_processing_does_no_segment_work(cast, system_actor, send):
    actions.segment_create(
        workspace=cast.workspace, actor=system_actor, name="逛了两次", rule=VIEWED
    )
    send(viewed("u-2"), viewed("u-2"))
    assert not SegmentMember.objects.exists()


def test_a_merge_carries_history_and_static_memberships(cast, system_actor, make_contact):
    a = make_contact(name="甲", phone="13900000011")
    b = make_contact(name="乙", phone="13900000012")
    static = actions.segment_create(
        workspace=cast.workspace,
        actor=system_actor,
        name="门店名单",
        kind="static",
        contact_ids=[b.pk],
    )
    contact_actions.contacts_merge(
        workspace=cast.workspace, actor=system_actor, survivor=a, other=b
    )
    assert member_ids(static) == {a.pk}
    history = list(
        SegmentChange.objects.filter(segment=static)
        .order_by("id")
        .values_list("contact_id", "kind")
    )
    # b's own history went with b: a entered once, when the list passed to it
    assert history == [(a.pk, "entered")]


def test_a_merge_keeps_rule_based_sizes_and_re_evaluates_the_survivor(
    cast, system_actor, make_contact, django_capture_on_commit_callbacks
):
    from siyu.contacts.models import Contact
    from siyu.segments.models import Segment

    a = make_contact(name="甲", phone="13900000021")
    b = make_contact(name="乙", phone="13900000022")
    c = make_contact(name="丙", phone="13900000023")
    Contact.objects.filter(pk__in=[b.pk, c.pk]).update(city="上海")
    segment = actions.segment_create(
        workspace=cast.workspace,
        actor=system_actor,
        name="上海",
        rule={"type": "field", "field": "city", "op": "eq", "value": "上海"},
    )
    assert member_ids(segment) == {b.pk, c.pk}
    with django_capture_on_commit_callbacks(execute=True):
        contact_actions.contacts_merge(
            workspace=cast.workspace, actor=system_actor, survivor=a, other=b
        )
    # the survivor took b's city (fill_from) and was re-evaluated: it entered
    assert member_ids(segment) == {a.pk, c.pk}
    assert Segment.objects.get(pk=segment.pk).size == 2
    kinds = sorted(SegmentChange.objects.filter(segment=segment).values_list("contact_id", "kind"))
    assert kinds == sorted([(a.pk, "entered"), (c.pk, "entered")])


def test_the_schedule_is_claimed_once(cast, settings):
    settings.SIYU_SEGMENT_REFRESH_MINUTES = 15
    now = timezone.now()
    first = claim_due(now)
    assert cast.workspace.pk in first["refresh"]
    assert claim_due(now)["refresh"] == []  # a second worker, same moment: nothing
    later = now + datetime.timedelta(minutes=16)
    assert cast.workspace.pk in claim_due(later)["refresh"]
    row = RefreshSchedule.objects.get(workspace=cast.workspace)
    local = row.next_clv_at.astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    assert (local.hour, local.minute) == (3, 0)

"""The routing fields a queue row carries (tracking/routing.py): computed in SQL by the
collection API's statement on PostgreSQL and in Python elsewhere, to the same answers."""

import datetime

import pytest
from django.db import transaction
from django.utils import timezone

from siyu.tracking import queue
from siyu.tracking.models import Event, QueuedEvent
from siyu.tracking.routing import COLUMNS, for_event, is_plain

WHEN = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=datetime.UTC)
LONG = "渠" * 130

# (type, event, userId, anonymousId, context): plain or not, and the channel, vary
CASES = [
    ("track", "Video Played", "u-1", "", {"channel": " 企业微信 "}),
    ("page", "首页", "", "a-1", {"campaign": {"source": "douyin"}}),
    ("screen", "Home", "u-1", "a-1", {"library": {"name": "analytics-python"}}),
    ("track", "Order Completed", "u-1", "", {}),
    ("track", "Order Refunded", "u-1", "", {}),
    ("identify", "", "u-1", "", {}),
    ("alias", "", "u-1", "", {}),
    ("group", "", "u-1", "", {}),
    ("track", "Coupon Claimed", "u-1", "", {"traits": {"vip": 1}}),
    ("track", "Coupon Claimed", "u-1", "", {"traits": {}}),
    ("track", "Coupon Claimed", "u-1", "", {"traits": "not an object"}),
    ("track", "Coupon Claimed", " u-1", "", {}),
    ("track", "Coupon Claimed", "u-1", "a-1 ", {}),
    ("track", "Coupon Claimed", "", "", {}),
    # blanks, non-strings and over-long names as channel candidates
    ("track", "X", "u-1", "", {"channel": " \t\x0b\n", "campaign": {"source": "wechat"}}),
    ("track", "X", "u-1", "", {"channel": 7, "campaign": "douyin", "library": {"name": "py"}}),
    ("track", "X", "u-1", "", {"channel": LONG}),
    ("track", "X", "u-1", "", {"channel": "\u3000wide space\u3000"}),
]


def _event(workspace, n: int, type_, name, user, anonymous, context) -> Event:
    return Event(
        workspace=workspace,
        message_id=f"m-{n}",
        type=type_,
        event=name,
        user_id=user,
        anonymous_id=anonymous,
        context=context,
        timestamp=WHEN + datetime.timedelta(minutes=n),
        received_at=timezone.now(),
    )


@pytest.mark.django_db(transaction=True)
def test_queue_rows_carry_the_same_routing_as_python_computes(cast):
    events = [_event(cast.workspace, n, *case) for n, case in enumerate(CASES)]
    with transaction.atomic():
        queue.store(events)
    stored = {e.message_id: e for e in Event.objects.filter(workspace=cast.workspace)}
    fields = ["user_id", "anonymous_id", "type", "event_name", "timestamp", "plain", "channel"]
    rows = {
        q.event_id: dict(zip(COLUMNS, (getattr(q, f) for f in fields), strict=True))
        for q in QueuedEvent.objects.filter(workspace=cast.workspace)
    }
    assert len(rows) == len(CASES)
    for n, case in enumerate(CASES):
        event = stored[f"m-{n}"]
        expected = for_event(event)
        expected["event"] = expected.pop("event_name")
        assert rows[event.pk] == expected, case
    # and the rules say what they should of a few of them
    plain = [is_plain(stored[f"m-{n}"]) for n in range(len(CASES))]
    assert plain[:3] == [True, True, True] and not any(plain[3:9])
    assert plain[9] and plain[10] and not any(plain[11:14])
    channels = [rows[stored[f"m-{n}"].pk]["channel"] for n in range(len(CASES))]
    assert channels[:3] == ["企业微信", "douyin", "analytics-python"]
    assert channels[14:] == ["wechat", "py", LONG[:120], "\u3000wide space\u3000"]

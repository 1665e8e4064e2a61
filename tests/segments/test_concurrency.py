"""Two workers refreshing the same segment at once record every move exactly once."""

import threading

import pytest
from django.db import connection, connections

from siyu.contacts.models import Contact
from siyu.segments import actions
from siyu.segments.membership import refresh_contacts, refresh_segment
from siyu.segments.models import SegmentChange, SegmentMember

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serialises writers itself"
)

SHANGHAI = {"type": "field", "field": "city", "op": "eq", "value": "上海"}


def in_threads(*calls) -> list:
    errors, barrier = [], threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_refreshes_record_each_move_once(transactional_db, cast, make_contact):
    people = [make_contact(name=f"客户{n}") for n in range(40)]
    segment = actions.segment_create(
        workspace=cast.workspace, actor=cast.owner.actor, name="上海", rule=SHANGHAI
    )
    Contact.objects.filter(pk__in=[p.pk for p in people[:25]]).update(city="上海")
    errors = in_threads(
        lambda: refresh_segment(segment),
        lambda: refresh_segment(segment),
        lambda: refresh_contacts(segment, [p.pk for p in people[:10]]),
    )
    assert errors == []
    assert SegmentMember.objects.filter(segment=segment).count() == 25
    entered = SegmentChange.objects.filter(segment=segment, kind="entered")
    assert entered.count() == 25
    assert entered.values("contact_id").distinct().count() == 25
    segment.refresh_from_db()
    assert segment.size == 25

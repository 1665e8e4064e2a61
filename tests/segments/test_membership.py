"""Refresh stores membership with entered/exited history and sizes; static segments; built-ins;
refreshing twice (or concurrently) records nothing twice."""

import datetime

from siyu.contacts.models import Contact
from siyu.segments import actions
from siyu.segments.membership import refresh_contacts, refresh_order, refresh_segment
from siyu.segments.models import SegmentChange, SegmentKind, SegmentMember, SegmentSize

from .conftest import NOW

SHANGHAI = {"type": "field", "field": "city", "op": "eq", "value": "上海"}


def members(segment) -> set[int]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True))


def changes(segment) -> list[tuple[int, str]]:
    return sorted(SegmentChange.objects.filter(segment=segment).values_list("contact_id", "kind"))


def test_create_refreshes_and_records_entries(pool):
    segment = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="上海客户", rule=SHANGHAI
    )
    assert members(segment) == pool.ids("王芳", "张伟")
    assert segment.size == 2
    assert changes(segment) == sorted((pk, "entered") for pk in pool.ids("王芳", "张伟"))
    assert SegmentSize.objects.filter(segment=segment).count() == 1


def test_refresh_records_entered_and_exited_once(pool):
    segment = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="上海客户", rule=SHANGHAI
    )
    Contact.objects.filter(pk=pool.c["张伟"].pk).update(city="北京")
    Contact.objects.filter(pk=pool.c["刘洋"].pk).update(city="上海")
    result = refresh_segment(segment)
    assert (result["entered"], result["exited"], result["size"]) == (1, 1, 2)
    assert members(segment) == pool.ids("王芳", "刘洋")
    assert refresh_segment(segment)["entered"] == refresh_segment(segment)["exited"] == 0
    kinds = [k for pk, k in changes(segment) if pk == pool.c["张伟"].pk]
    assert sorted(kinds) == ["entered", "exited"]
    sizes = list(SegmentSize.objects.filter(segment=segment).values_list("size", "entered"))
    assert sizes == [(2, 2), (2, 1)]  # the unchanged refreshes wrote no size row


def test_real_time_refresh_touches_only_the_given_contacts(pool):
    segment = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="上海客户", rule=SHANGHAI, realtime=True
    )
    Contact.objects.filter(pk__in=pool.ids("张伟", "刘洋")).update(city="上海")
    Contact.objects.filter(pk=pool.c["王芳"].pk).update(city="杭州")
    result = refresh_contacts(segment, [pool.c["刘洋"].pk])
    assert (result["entered"], result["exited"]) == (1, 0)
    # 王芳 left the city but was not re-evaluated: still a member until her turn
    assert members(segment) == pool.ids("王芳", "张伟", "刘洋")
    assert refresh_contacts(segment, [pool.c["王芳"].pk])["exited"] == 1
    assert members(segment) == pool.ids("张伟", "刘洋")


def test_static_segment_members_are_set_by_hand(pool):
    ids = sorted(pool.ids("王芳", "李娜"))
    segment = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="门店名单", kind="static", contact_ids=ids
    )
    assert members(segment) == set(ids) and segment.size == 2
    result = actions.static_members_change(
        workspace=pool.ws,
        actor=pool.actor,
        segment=segment,
        add=[pool.c["张伟"].pk, pool.c["王芳"].pk],
        remove=[pool.c["李娜"].pk],
    )
    assert (result["entered"], result["exited"], result["size"]) == (1, 1, 2)
    assert members(segment) == pool.ids("王芳", "张伟")
    # a static segment is never recomputed
    assert actions.segment_refresh(workspace=pool.ws, segment=segment)["size"] == 2


def test_segment_of_segments_refreshes_after_what_it_uses(pool):
    base = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="上海客户", rule=SHANGHAI
    )
    user = actions.segment_create(
        workspace=pool.ws,
        actor=pool.actor,
        name="上海有手机号",
        rule={
            "type": "and",
            "rules": [
                {"type": "segment", "op": "in", "value": base.pk},
                {"type": "identity", "op": "has", "value": "phone"},
            ],
        },
    )
    assert members(user) == pool.ids("王芳")
    order = [s.pk for s in refresh_order(pool.ws)]
    assert order.index(base.pk) < order.index(user.pk)


def test_builtins_are_created_once_and_follow_scores(pool):
    first = actions.builtins_ensure(pool.ws)
    again = actions.builtins_ensure(pool.ws)
    assert {s.pk for s in first} == {s.pk for s in again}
    keys = {s.builtin_key for s in first}
    assert {"stage:active", "tier:high", "rfm:champions"} <= keys
    active = next(s for s in first if s.builtin_key == "stage:active")
    assert active.kind == SegmentKind.BUILTIN
    refresh_segment(active, now=NOW)
    assert members(active) == pool.ids("王芳", "张伟")


def test_time_relative_rules_move_with_the_clock(pool):
    rule = {"type": "field", "field": "last_seen_at", "op": "within_last_days", "value": 7}
    segment = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="近7天", rule=rule, refresh=False
    )
    refresh_segment(segment, now=NOW)
    assert members(segment) == pool.ids("王芳", "张伟")
    refresh_segment(segment, now=NOW + datetime.timedelta(days=3))
    assert members(segment) == pool.ids("王芳")


def test_refresh_segments_command(pool):
    import io

    import pytest
    from django.core.management import CommandError, call_command

    segment = actions.segment_create(
        workspace=pool.ws, actor=pool.actor, name="上海客户", rule=SHANGHAI, refresh=False
    )
    out = io.StringIO()
    call_command("refresh_segments", workspace=pool.ws.slug, stdout=out)
    assert "scored 5 contacts" in out.getvalue()
    assert members(segment) == pool.ids("王芳", "张伟")
    assert SegmentMember.objects.filter(segment__builtin_key="stage:active").exists()
    with pytest.raises(CommandError):
        call_command("refresh_segments", workspace="nope")

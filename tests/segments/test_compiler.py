"""Every rule type compiled to SQL selects exactly the contacts it should, and its negation
selects exactly everyone else (two-valued logic), on SQLite and PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.segments.compiler import sample_bucket, segment_queryset
from siyu.segments.rules import RuleContext, validate_rule
from tests.helpers import processed_event

from .conftest import NOW


def select(pool, rule) -> set[int]:
    clean = validate_rule(rule, RuleContext(pool.ws))
    return set(segment_queryset(pool.ws, clean, NOW).values_list("pk", flat=True))


def field(name, op, value=None):
    return {"type": "field", "field": name, "op": op, "value": value}


CASES = [
    # (rule, the names it selects)
    (field("city", "eq", "上海"), {"王芳", "张伟"}),
    (field("city", "neq", "上海"), {"李娜", "刘洋", "陈静"}),
    (field("city", "in", ["北京", "杭州"]), {"李娜", "刘洋"}),
    (field("city", "not_in", ["北京", "杭州"]), {"王芳", "张伟", "陈静"}),
    (field("name", "contains", "娜"), {"李娜"}),
    (field("name", "starts_with", "王"), {"王芳"}),
    (field("city", "is_set"), {"王芳", "李娜", "张伟", "刘洋"}),
    (field("city", "not_set"), {"陈静"}),
    (field("source", "eq", "douyin"), {"陈静"}),
    (field("birthday", "anniversary_within_next_days", 7), {"王芳"}),
    (field("birthday", "anniversary_within_next_days", 2), set()),
    (field("birthday", "before", "1988-01-01"), {"张伟"}),
    (field("birthday", "is_set"), {"王芳", "张伟"}),
    (field("last_seen_at", "within_last_days", 7), {"王芳", "张伟"}),
    (field("last_seen_at", "more_than_days_ago", 90), {"刘洋", "陈静"}),
    (field("last_seen_at", "on", "2026-10-31"), {"李娜"}),
    (field("last_seen_at", "between", ["2026-10-01", "2026-11-14"]), {"李娜"}),
    (field("owner", "is_set"), {"刘洋"}),
    ({"type": "attribute", "key": "vip_level", "op": "gte", "value": 2}, {"王芳"}),
    ({"type": "attribute", "key": "vip_level", "op": "lt", "value": 2}, {"李娜"}),
    ({"type": "attribute", "key": "vip_level", "op": "between", "value": [1, 3]}, {"王芳", "李娜"}),
    ({"type": "attribute", "key": "vip_level", "op": "is_set"}, {"王芳", "李娜"}),
    ({"type": "attribute", "key": "vip_level", "op": "neq", "value": 3}, {"李娜"}),
    ({"type": "attribute", "key": "wedding", "op": "after", "value": "2015-01-01"}, {"王芳"}),
    (
        {"type": "attribute", "key": "wedding", "op": "anniversary_within_next_days", "value": 1},
        {"王芳"},
    ),
    ({"type": "identity", "op": "has", "value": "phone"}, {"王芳"}),
    ({"type": "identity", "op": "has", "value": "wecom_external_userid"}, {"李娜"}),
    ({"type": "consent", "channel": "sms", "op": "is", "value": "granted"}, {"王芳"}),
    ({"type": "consent", "channel": "sms", "op": "is", "value": "withdrawn"}, {"李娜"}),
    (
        {"type": "consent", "channel": "sms", "op": "is", "value": "unknown"},
        {"张伟", "刘洋", "陈静"},
    ),
    (
        {"type": "consent", "channel": "sms", "op": "is_not", "value": "withdrawn"},
        {"王芳", "张伟", "刘洋", "陈静"},
    ),
    ({"type": "orders", "metric": "count", "op": "gte", "value": 2}, {"王芳"}),
    ({"type": "orders", "metric": "count", "op": "eq", "value": 0}, {"张伟", "陈静"}),
    (
        {"type": "orders", "metric": "count", "op": "lte", "value": 1},
        {"李娜", "张伟", "刘洋", "陈静"},
    ),
    ({"type": "orders", "metric": "spend", "op": "gte", "value": 1000}, {"王芳"}),
    (
        {"type": "orders", "metric": "spend", "op": "lt", "value": "100.50"},
        {"张伟", "刘洋", "陈静"},
    ),
    (
        {
            "type": "orders",
            "metric": "spend",
            "op": "gte",
            "value": 1000,
            "window": {"last_days": 30},
        },
        {"王芳"},
    ),
    (
        {
            "type": "orders",
            "metric": "spend",
            "op": "gte",
            "value": 1250,
            "window": {"last_days": 30},
        },
        set(),
    ),
    (
        {"type": "orders", "metric": "count", "op": "eq", "value": 0, "window": {"last_days": 30}},
        {"李娜", "张伟", "刘洋", "陈静"},
    ),
    ({"type": "orders", "metric": "average", "op": "gte", "value": 300}, {"王芳", "李娜"}),
    (
        {"type": "orders", "metric": "last_order_at", "op": "within_last_days", "value": 30},
        {"王芳"},
    ),
    (
        {"type": "orders", "metric": "first_order_at", "op": "more_than_days_ago", "value": 90},
        {"王芳", "刘洋"},
    ),
    ({"type": "orders", "metric": "last_order_at", "op": "not_set"}, {"张伟", "陈静"}),
    (
        {
            "type": "orders",
            "metric": "count",
            "op": "eq",
            "value": 1,
            "window": {"from": "2026-09-01", "to": "2026-09-30"},
        },
        {"李娜"},
    ),
    ({"type": "bought", "by": "product", "op": "any", "value": ["sku-9"]}, {"李娜"}),
    (
        {
            "type": "bought",
            "by": "category",
            "op": "any",
            "value": ["彩妆", "护肤"],
            "window": {"last_days": 7},
        },
        {"王芳"},
    ),
    (
        {"type": "bought", "by": "category", "op": "none", "value": ["护肤"]},
        {"王芳", "张伟", "刘洋", "陈静"},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "op": "gte",
            "value": 5,
            "window": {"last_days": 7},
        },
        {"王芳"},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "op": "gte",
            "value": 3,
            "window": {"last_days": 2},
        },
        set(),
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "op": "lte",
            "value": 1,
            "window": {"last_days": 2},
        },
        {"李娜", "张伟", "刘洋", "陈静"},
    ),
    (
        {"type": "event", "event": "Product Viewed", "op": "eq", "value": 0},
        {"李娜", "张伟", "刘洋", "陈静"},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "op": "gte",
            "value": 2,
            "window": {"last_days": 30},
            "where": [{"property": "price", "kind": "number", "op": "gte", "value": 100}],
        },
        {"王芳"},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "op": "gte",
            "value": 1,
            "where": [{"property": "name", "kind": "string", "op": "eq", "value": "粉底"}],
        },
        set(),
    ),
    (
        {
            "type": "event_time",
            "event": "Signed Up",
            "which": "first",
            "op": "more_than_days_ago",
            "value": 30,
        },
        {"李娜"},
    ),
    (
        {
            "type": "event_time",
            "event": "Product Viewed",
            "which": "last",
            "op": "within_last_days",
            "value": 1,
        },
        {"王芳"},
    ),
    ({"type": "score", "field": "stage", "op": "eq", "value": "churned"}, {"刘洋", "陈静"}),
    (
        {"type": "score", "field": "tier", "op": "in", "value": ["high", "mid", "low"]},
        {"王芳", "李娜"},
    ),
    ({"type": "score", "field": "rfm_segment", "op": "eq", "value": "champions"}, {"王芳"}),
    ({"type": "score", "field": "rfm_r", "op": "lte", "value": 3}, {"李娜", "刘洋"}),
    ({"type": "score", "field": "p_alive", "op": "gt", "value": 0.5}, {"王芳"}),
    ({"type": "score", "field": "expected_value_12m", "op": "gte", "value": 2000}, {"王芳"}),
    ({"type": "sample", "value": 100}, {"王芳", "李娜", "张伟", "刘洋", "陈静"}),
]


def _names(pool, ids):
    return {name for name, c in pool.c.items() if c.pk in ids}


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_rule_selects_and_its_negation_selects_the_rest(pool, rule, expected):
    got = select(pool, rule)
    assert _names(pool, got) == expected
    assert select(pool, {"type": "not", "rule": rule}) == pool.everyone - got


def test_tags_any_all_none(pool):
    member, new = pool.tags["会员"], pool.tags["新品"]
    assert _names(pool, select(pool, {"type": "tags", "op": "any", "value": [member, new]})) == {
        "王芳",
        "李娜",
    }
    assert _names(pool, select(pool, {"type": "tags", "op": "all", "value": [member, new]})) == {
        "李娜"
    }
    assert _names(pool, select(pool, {"type": "tags", "op": "none", "value": [new]})) == {
        "王芳",
        "张伟",
        "刘洋",
        "陈静",
    }


def test_owner_compares_staff_ids(pool, cast):
    operator = cast.operator.staff.pk
    assert _names(pool, select(pool, field("owner", "eq", operator))) == {"刘洋"}
    # "not this advisor" includes the unassigned
    assert _names(pool, select(pool, field("owner", "neq", operator))) == {
        "王芳",
        "李娜",
        "张伟",
        "陈静",
    }


def test_and_or_not_nest(pool):
    rule = {
        "type": "and",
        "rules": [
            {"type": "or", "rules": [field("city", "eq", "上海"), field("city", "eq", "北京")]},
            {"type": "not", "rule": {"type": "identity", "op": "has", "value": "phone"}},
        ],
    }
    assert _names(pool, select(pool, rule)) == {"李娜", "张伟"}
    assert select(pool, {"type": "and", "rules": []}) == pool.everyone
    assert select(pool, {"type": "or", "rules": []}) == set()


def test_one_statement_scoped_to_the_workspace(pool, cast):
    rule = {
        "type": "and",
        "rules": [
            field("city", "eq", "上海"),
            {"type": "orders", "metric": "count", "op": "lte", "value": 1},
            {
                "type": "event",
                "event": "Product Viewed",
                "op": "gte",
                "value": 1,
                "window": {"last_days": 7},
            },
            {"type": "tags", "op": "none", "value": [pool.tags["黑名单"]]},
        ],
    }
    clean = validate_rule(rule, RuleContext(pool.ws))
    with CaptureQueriesContext(connection) as queries:
        ids = list(segment_queryset(pool.ws, clean, NOW).values_list("pk", flat=True))
    assert len(queries) == 1
    assert ids == []
    # the outsider's 王芳 shares a phone and a name, never a segment
    phone = {"type": "identity", "op": "has", "value": "phone"}
    assert select(pool, phone) == pool.ids("王芳")


def test_sample_is_stable_and_matches_python(pool):
    rule = {"type": "sample", "value": 40, "seed": "holdout"}
    first = select(pool, rule)
    assert select(pool, rule) == first
    expected = {pk for pk in pool.everyone if sample_bucket(pk, "holdout") < 4000}
    assert first == expected


def test_sample_buckets_are_uniform():
    counts = [0] * 10
    for pk in range(1, 20001):
        counts[sample_bucket(pk, "seed") // 1000] += 1
    assert all(1800 < n < 2200 for n in counts), counts


def test_property_names_are_keys_not_lookups(pool):
    processed_event(
        pool.ws,
        pool.c["李娜"],
        message_id="odd-names",
        type="track",
        event="Odd",
        properties={"a__b": "x", "contains": "y"},
        timestamp=NOW,
        received_at=NOW,
    )
    for name, value in (("a__b", "x"), ("contains", "y")):
        rule = {
            "type": "event",
            "event": "Odd",
            "op": "gte",
            "value": 1,
            "where": [{"property": name, "kind": "string", "op": "eq", "value": value}],
        }
        assert _names(pool, select(pool, rule)) == {"李娜"}, name


def test_first_and_last_time_windows_match_event_windows(pool):
    # 李娜 signed up 40 days ago: outside a 40-day window, inside a 41-day one, both ways
    for days, inside in ((40, False), (41, True)):
        window = {"last_days": days}
        counted = {"type": "event", "event": "Signed Up", "op": "gte", "value": 1,
                   "window": window}  # fmt: skip
        first = {"type": "event_time", "event": "Signed Up", "which": "first",
                 "op": "within_last_days", "value": days}  # fmt: skip
        assert ("李娜" in _names(pool, select(pool, counted))) is inside
        assert ("李娜" in _names(pool, select(pool, first))) is inside

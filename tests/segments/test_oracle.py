"""Hundreds of random rules: the SQL (compiler.py) selects exactly the contacts the Python
reference evaluator (evaluate.py) accepts, on the test pool and on both databases."""

import json
import random
from zoneinfo import ZoneInfo

from siyu.contacts.models import AttributeDefinition
from siyu.segments import actions
from siyu.segments.compiler import Clock, segment_queryset
from siyu.segments.evaluate import load_records, matches
from siyu.segments.rules import ATTRIBUTE_TYPES, RuleContext, validate_rule

from .conftest import NOW

DAYS = [1, 3, 7, 30, 90, 365]
DATES = ["2025-06-01", "2026-09-21", "2026-11-15", "2026-11-20"]


def random_leaf(rng: random.Random, pool, segment_ids: list[int]) -> dict:
    kind = rng.choice(
        ["field", "field", "attribute", "tags", "identity", "consent", "orders", "orders",
         "bought", "event", "event", "event_time", "score", "score", "segment", "sample"]
    )  # fmt: skip
    if kind == "field":
        name, op, value = rng.choice(
            [
                ("city", "eq", rng.choice(["上海", "北京", "杭州", ""])),
                ("city", "in", ["上海", "杭州"]),
                ("city", "not_set", None),
                ("name", "contains", rng.choice(["王", "娜", "x"])),
                ("source", "neq", "douyin"),
                ("birthday", "anniversary_within_next_days", rng.choice([0, 3, 7, 200])),
                ("birthday", rng.choice(["before", "after", "on"]), rng.choice(DATES)),
                ("birthday", "is_set", None),
                ("last_seen_at", rng.choice(["within_last_days", "more_than_days_ago"]),
                 rng.choice(DAYS)),
                ("first_seen_at", "between", ["2025-01-01", "2026-01-01"]),
                ("owner", "is_set", None),
                ("gender", "in", ["female", "unknown"]),
            ]
        )  # fmt: skip
        return {"type": "field", "field": name, "op": op, "value": value}
    if kind == "attribute":
        key, op, value = rng.choice(
            [
                ("vip_level", rng.choice(["gt", "gte", "lt", "lte", "eq", "neq"]),
                 rng.randrange(0, 4)),
                ("vip_level", "between", [1, 2]),
                ("vip_level", rng.choice(["is_set", "not_set"]), None),
                ("wedding", rng.choice(["within_last_days", "anniversary_within_next_days"]),
                 rng.choice(DAYS)),
                ("wedding", rng.choice(["before", "after"]), rng.choice(DATES)),
            ]
        )  # fmt: skip
        return {"type": "attribute", "key": key, "op": op, "value": value}
    if kind == "tags":
        tags = rng.sample(sorted(pool.tags.values()), rng.randrange(1, 3))
        return {"type": "tags", "op": rng.choice(["any", "all", "none"]), "value": tags}
    if kind == "identity":
        value = rng.choice(["phone", "wecom_external_userid", "email"])
        return {"type": "identity", "op": rng.choice(["has", "has_not"]), "value": value}
    if kind == "consent":
        return {
            "type": "consent",
            "channel": rng.choice(["sms", "email"]),
            "op": rng.choice(["is", "is_not"]),
            "value": rng.choice(["granted", "withdrawn", "unknown"]),
        }
    window = rng.choice([None, {"last_days": rng.choice(DAYS)}, {"from": "2026-05-01"}])
    if kind == "orders":
        metric = rng.choice(["count", "spend", "average", "first_order_at", "last_order_at"])
        if metric in ("first_order_at", "last_order_at"):
            op = rng.choice(["within_last_days", "more_than_days_ago", "is_set", "not_set"])
            value = rng.choice(DAYS) if "days" in op else None
        else:
            op = rng.choice(["eq", "neq", "gt", "gte", "lt", "lte", "between"])
            value = (
                rng.choice([0, 1, 2, 3, 100, 300, 1200]) if metric != "count" else rng.randrange(4)
            )
            if op == "between":
                value = sorted([value, rng.choice([0, 1, 500, 2000])])
        return {"type": "orders", "metric": metric, "op": op, "value": value, "window": window}
    if kind == "bought":
        by = rng.choice(["product", "category"])
        value = rng.sample(["sku-1", "sku-9", "sku-x"] if by == "product" else ["彩妆", "护肤"], 1)
        return {"type": "bought", "by": by, "op": rng.choice(["any", "none"]), "value": value,
                "window": window}  # fmt: skip
    if kind == "event":
        rule = {
            "type": "event",
            "event": rng.choice(["Product Viewed", "Signed Up", "page"]),
            "op": rng.choice(["eq", "neq", "gt", "gte", "lt", "lte"]),
            "value": rng.randrange(0, 6),
            "window": rng.choice([None, {"last_days": rng.choice(DAYS)}]),
        }
        if rng.random() < 0.4:
            rule["where"] = [
                rng.choice(
                    [
                        {"property": "price", "kind": "number", "op": rng.choice(["gt", "lte"]),
                         "value": rng.choice([100, 199, 300])},
                        {"property": "name", "kind": "string", "op": "eq", "value": "口红"},
                        {"property": "color", "kind": "string", "op": "not_set"},
                    ]
                )
            ]  # fmt: skip
        return rule
    if kind == "event_time":
        return {
            "type": "event_time",
            "event": rng.choice(["Product Viewed", "Signed Up"]),
            "which": rng.choice(["first", "last"]),
            "op": rng.choice(["within_last_days", "more_than_days_ago"]),
            "value": rng.choice(DAYS),
        }
    if kind == "score":
        field, op, value = rng.choice(
            [
                ("stage", rng.choice(["eq", "neq"]), rng.choice(["active", "churned", "new"])),
                ("tier", "in", ["high", "low"]),
                ("rfm_segment", rng.choice(["is_set", "not_set"]), None),
                ("rfm_r", rng.choice(["gte", "lt"]), rng.randrange(1, 6)),
                ("p_alive", rng.choice(["gt", "not_set"]), 0.5),
                ("expected_value_12m", "gte", rng.choice([100, 5000])),
            ]
        )
        return {"type": "score", "field": field, "op": op, "value": value}
    if kind == "segment" and segment_ids:
        return {
            "type": "segment",
            "op": rng.choice(["in", "not_in"]),
            "value": rng.choice(segment_ids),
        }
    return {"type": "sample", "value": rng.choice([10, 50, 90]), "seed": rng.choice(["a", "b"])}


def random_rule(rng, pool, segment_ids, depth=0) -> dict:
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        children = [
            random_rule(rng, pool, segment_ids, depth + 1) for _ in range(rng.randrange(0, 4))
        ]
        return {"type": rng.choice(["and", "or"]), "rules": children}
    if depth < 3 and roll < 0.4:
        return {"type": "not", "rule": random_rule(rng, pool, segment_ids, depth + 1)}
    return random_leaf(rng, pool, segment_ids)


def test_sql_and_python_agree_on_random_rules(pool):
    shanghai = actions.segment_create(
        workspace=pool.ws,
        actor=pool.actor,
        name="上海",
        rule={"type": "field", "field": "city", "op": "eq", "value": "上海"},
    )
    static = actions.segment_create(
        workspace=pool.ws,
        actor=pool.actor,
        name="名单",
        kind="static",
        contact_ids=sorted(pool.ids("李娜", "刘洋")),
    )
    clock = Clock(now=NOW, tz=ZoneInfo(pool.ws.timezone))
    records = load_records(pool.ws.pk, sorted(pool.everyone))
    types = {
        d.key: ATTRIBUTE_TYPES[d.type]
        for d in AttributeDefinition.objects.filter(workspace=pool.ws)
    }
    rng = random.Random(20261124)
    selected_sizes = set()
    for n in range(400):
        rule = validate_rule(random_rule(rng, pool, [shanghai.pk, static.pk]), RuleContext(pool.ws))
        sql = set(segment_queryset(pool.ws, rule, NOW).values_list("pk", flat=True))
        python = {r.contact.pk for r in records if matches(rule, r, clock, types)}
        assert sql == python, (n, json.dumps(rule, ensure_ascii=False))
        # real time: the same rule for a few contacts, pushed into every subquery
        few = rng.sample(sorted(pool.everyone), 2)
        only = set(segment_queryset(pool.ws, rule, NOW, only=few).values_list("pk", flat=True))
        assert only == sql & set(few), (n, json.dumps(rule, ensure_ascii=False))
        selected_sizes.add(len(sql))
    # the random rules are not all trivially empty or full
    assert len(selected_sizes) >= 4

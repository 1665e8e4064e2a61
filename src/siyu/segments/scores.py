"""Lifecycle stage, value tier and RFM scores per contact (docs/tiers.md).

Every contact of a workspace gets exactly one stage and one tier; contacts with at least
one order also get R, F and M quintile scores and a named RFM segment. Everything is
computed by a few set-based statements over the per-contact aggregates kept on ingest
(Contact.first_seen_at / last_seen_at, tracking.DailyEventCount, tracking.Order,
tracking.ContactStats), on SQLite and PostgreSQL alike: never a Python loop over contacts.

The seed's definitions (002: 活跃用户每周至少登录平台一次; 沉默用户近一个月内登录次数不超过
两次; 流失用户则连续三个月未登录平台) overlap and leave a gap: a user who visited once this
week and not otherwise this month is both "active" and "dormant"; every churned user is also
"dormant" (0 ≤ 2 visits); a user with four visits this month but none this week is none of
them. Taken in a fixed order, first match wins, they become a partition:

    new      first seen within `new_days` (too young to judge by history)
    churned  not seen within `churned_days`
    active   a visit within `active_days`, or more than `dormant_max_visits` visit days
             within `dormant_window_days` (the complement of the seed's "dormant" count)
    dormant  everything else

A "visit" is a calendar day (the workspace's time zone) with at least one counted event in
DailyEventCount. "Within N days" excludes the instant exactly N days ago: timestamps must be
later than `now - N days`, days must be one of the N calendar days ending today.
"""

import datetime
import time
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.core import sqlbulk
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.segments.models import (
    ContactScore,
    LifecycleStage,
    RfmSegment,
    ScoringSettings,
    StageFlow,
    ValueTier,
)
from siyu.tracking.models import ContactStats, DailyEventCount, Order, OrderStatus

DEFAULTS: dict[str, int] = {
    # stages
    "new_days": 14,
    "churned_days": 90,  # 连续三个月未登录
    "active_days": 7,  # 每周至少登录一次
    "dormant_window_days": 30,  # 近一个月内 ...
    "dormant_max_visits": 2,  # ... 登录次数不超过两次
    # tiers, over the last `tier_window_days` of orders (年均消费)
    "tier_window_days": 365,
    "high_spend_fen": 500_000,  # 超过 5000 元 ...
    "high_min_orders": 12,  # ... 且每月至少购买一次
    "mid_spend_fen": 100_000,  # 1000 - 5000 元
}

# (minimum, maximum) per key: days up to ten years, money up to parse_money's limit
_BOUNDS: dict[str, tuple[int, int]] = {
    "new_days": (1, 3650),
    "churned_days": (1, 3650),
    "active_days": (1, 3650),
    "dormant_window_days": (1, 3650),
    "dormant_max_visits": (0, 3650),
    "tier_window_days": (1, 3650),
    "high_spend_fen": (0, 10**17),
    "high_min_orders": (1, 1_000_000),
    "mid_spend_fen": (0, 10**17),
}
# (smaller, larger, strictly): relations between keys, checked on the merged settings
_ORDER: tuple[tuple[str, str, bool], ...] = (
    ("mid_spend_fen", "high_spend_fen", True),
    ("active_days", "dormant_window_days", False),
    ("dormant_window_days", "churned_days", False),
)

# Orders that never count towards a tier: a fully refunded order is an order that did not
# happen (OrderStatus has no "cancelled"; a cancelled status would belong here too).
EXCLUDED_ORDER_STATUSES: tuple[str, ...] = (OrderStatus.REFUNDED,)

# The widely used RFM segment map on (R, F): ((R from, R to), (F from, F to), segment).
# Every (R, F) pair in 1..5 × 1..5 matches exactly one row.
RFM_MAP: tuple[tuple[tuple[int, int], tuple[int, int], str], ...] = (
    ((1, 2), (1, 2), RfmSegment.HIBERNATING),
    ((1, 2), (3, 4), RfmSegment.AT_RISK),
    ((1, 2), (5, 5), RfmSegment.CANT_LOSE),
    ((3, 3), (1, 2), RfmSegment.ABOUT_TO_SLEEP),
    ((3, 3), (3, 3), RfmSegment.NEED_ATTENTION),
    ((3, 4), (4, 5), RfmSegment.LOYAL),
    ((4, 4), (1, 1), RfmSegment.PROMISING),
    ((5, 5), (1, 1), RfmSegment.NEW_CUSTOMERS),
    ((4, 5), (2, 3), RfmSegment.POTENTIAL),
    ((5, 5), (4, 5), RfmSegment.CHAMPIONS),
)

_NEXT = "siyu_score_next"  # the temporary table a full refresh computes into
_RANKS = "siyu_score_ranks"  # the buyers' RFM quintiles, computed first
_CHUNK = 500  # contacts per statement on the contact_ids path
_LOCK_CLASS = 0x5C0E  # pg_advisory_xact_lock(class, workspace): one scoring run at a time


# --- settings ----------------------------------------------------------------------------------


def validate_scoring_settings(values: Any) -> dict[str, int]:
    """The overrides `values` cleaned (known keys, integers in range, consistent with each
    other once merged over DEFAULTS); raises ValidationError naming the bad key."""
    if not isinstance(values, dict):
        raise ValidationError("values", "must be an object of setting: integer")
    cleaned: dict[str, int] = {}
    for key, value in values.items():
        if key not in DEFAULTS:
            raise ValidationError(
                str(key),
                "not a scoring setting (one of %(keys)s)",
                params={"keys": ", ".join(DEFAULTS)},
            )
        # bool is an int in Python, and 7.0 or "7" are a client's mistake: say so
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(key, "must be a whole number")
        low, high = _BOUNDS[key]
        if value < low:
            message = "must not be negative" if low == 0 else "must be at least %(min)s"
            raise ValidationError(key, message, params={"min": low} if low else None)
        if value > high:
            raise ValidationError(key, "must be at most %(max)s", params={"max": high})
        cleaned[key] = value
    merged = {**DEFAULTS, **cleaned}
    for smaller, larger, strictly in _ORDER:
        if merged[smaller] < merged[larger] or (not strictly and merged[smaller] == merged[larger]):
            continue
        # name a key the caller sent (the other may be a default they never saw)
        if larger in cleaned:
            field, other = larger, smaller
            message = (
                "must be more than %(key)s (%(other)s)"
                if strictly
                else "must be at least %(key)s (%(other)s)"
            )
        else:
            field, other = smaller, larger
            message = (
                "must be less than %(key)s (%(other)s)"
                if strictly
                else "must be at most %(key)s (%(other)s)"
            )
        raise ValidationError(field, message, params={"key": other, "other": merged[other]})
    return cleaned


def scoring_settings(workspace: Workspace) -> dict[str, int]:
    """The workspace's thresholds: its stored overrides over DEFAULTS. Keys a later version
    no longer knows are ignored."""
    row = ScoringSettings.objects.filter(workspace=workspace).first()
    stored = row.values if row is not None and isinstance(row.values, dict) else {}
    return {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS}}


# --- RFM ---------------------------------------------------------------------------------------


def rfm_segment(r: int | None, f: int | None) -> str:
    """The named segment of an (R, F) pair ("" without scores), as the SQL computes it."""
    if r is None or f is None:
        return ""
    for (r_lo, r_hi), (f_lo, f_hi), segment in RFM_MAP:
        if r_lo <= r <= r_hi and f_lo <= f <= f_hi:
            return segment
    raise ValueError(f"no RFM segment for R={r} F={f}")  # pragma: no cover - map is complete


def _segment_sql(r: str, f: str) -> str:
    """RFM_MAP as one CASE expression over the columns `r` and `f`."""
    branches = " ".join(
        f"WHEN {r} BETWEEN {r_lo} AND {r_hi} AND {f} BETWEEN {f_lo} AND {f_hi} THEN {_lit(segment)}"
        for (r_lo, r_hi), (f_lo, f_hi), segment in RFM_MAP
    )
    return f"CASE {branches} ELSE '' END"


# --- refresh -----------------------------------------------------------------------------------


def scores_refresh(
    workspace: Workspace,
    *,
    now: datetime.datetime | None = None,
    contact_ids: Iterable[int] | None = None,
) -> dict[str, Any]:
    """Recompute the stage, tier and RFM scores of every contact of the workspace (or, with
    `contact_ids`, the stage and tier of those contacts only), record the day's stage and
    tier flows, and write ContactScore rows. `stage_since` / `tier_since` move only when
    the value changes. Returns {"contacts", "stage_changed", "tier_changed", "seconds"}
    (a contact's first score counts as a change, as it does in the flows).

    The `contact_ids` path (real time, after a contact's events are processed) keeps the
    contacts' RFM scores as they are until the next full refresh: a quintile is a rank
    among all of the workspace's buyers, and ranking even one contact means reading every
    buyer's aggregates, which is what the full refresh is for.

    On PostgreSQL, runs for the same workspace wait for each other (a transaction-scoped
    advisory lock): a real-time call waits for a running full refresh, and a change is
    never counted twice in the flows."""
    started = time.monotonic()
    now = now or timezone.now()
    params = _params(workspace, scoring_settings(workspace), now)
    totals = {"contacts": 0, "stage_changed": 0, "tier_changed": 0}
    with transaction.atomic():
        # two runs at once would both count the same change in the flows
        sqlbulk.workspace_lock(_LOCK_CLASS, workspace.pk)
        if contact_ids is None:
            _full(params, totals)
        else:
            ids = sorted({int(c) for c in contact_ids})
            for start in range(0, len(ids), _CHUNK):
                _some(params, ids[start : start + _CHUNK], totals)
    return {**totals, "seconds": round(time.monotonic() - started, 3)}


def _full(params: dict[str, Any], totals: dict[str, int]) -> None:
    """Compute every contact's scores once into a temporary table, then read the flows
    from it and upsert it (both joined on contact_id)."""
    with connection.cursor() as cursor:
        # the quintiles first, indexed: joined inline, SQLite scanned the window
        # function's result once per contact (quadratic)
        cursor.execute(f"DROP TABLE IF EXISTS {_RANKS}")
        cursor.execute(f"CREATE TEMPORARY TABLE {_RANKS} AS {_ranks_select()}", _adapt(params))
        cursor.execute(f"CREATE UNIQUE INDEX {_RANKS}_contact ON {_RANKS} (contact_id)")
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {_RANKS}")
        cursor.execute(f"DROP TABLE IF EXISTS {_NEXT}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_NEXT} AS {_next_select(rfm=True)}", _adapt(params)
        )
        cursor.execute(f"DROP TABLE {_RANKS}")
        if connection.vendor == "postgresql":
            # no autovacuum for temporary tables: give the planner real row counts
            cursor.execute(f"ANALYZE {_NEXT}")
    _flows_and_upsert(_NEXT, "", params, totals, rfm=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {_NEXT}")


def _some(params: dict[str, Any], ids: Sequence[int], totals: dict[str, int]) -> None:
    """Stage and tier of a few contacts, as a CTE in each statement (a temporary table per
    real-time call would churn the PostgreSQL catalog)."""
    named = {f"id{n}": cid for n, cid in enumerate(ids)}
    marks = ", ".join(f"%({name})s" for name in named)
    params = {**params, **named}
    select = _next_select(rfm=False, contacts=marks)
    _flows_and_upsert("next_scores", f"WITH next_scores AS ({select}) ", params, totals, rfm=False)


def _flows_and_upsert(
    source: str, with_sql: str, params: dict[str, Any], totals: dict[str, int], *, rfm: bool
) -> None:
    score = _table(ContactScore)
    # 1. the moves, grouped: at most 5 × 4 × 5 × 4 rows, whatever the number of contacts
    with connection.cursor() as cursor:
        cursor.execute(
            f"{with_sql}SELECT COALESCE(s.stage, ''), n.stage, COALESCE(s.tier, ''), n.tier, "
            f"COUNT(*) FROM {source} n LEFT JOIN {score} s ON s.contact_id = n.contact_id "
            "GROUP BY COALESCE(s.stage, ''), n.stage, COALESCE(s.tier, ''), n.tier",
            _adapt(params),
        )
        groups = cursor.fetchall()
    flows: dict[tuple[str, str, str], int] = {}
    for old_stage, stage, old_tier, tier, count in groups:
        totals["contacts"] += count
        for dimension, old, new in (("stage", old_stage, stage), ("tier", old_tier, tier)):
            if old != new:
                key = (dimension, old, new)
                flows[key] = flows.get(key, 0) + count
                totals[f"{dimension}_changed"] += count
    # 2. the day's flows: added to what earlier runs of the day recorded
    flow_table = _table(StageFlow)
    sqlbulk.upsert_values(
        flow_table,
        [
            ("workspace_id", "int"),
            ("day", "date"),
            ("dimension", "text"),
            ("from_value", "text"),
            ("to_value", "text"),
            ("count", "int"),
        ],
        [
            (params["ws"], params["today"], dimension, old, new, count)
            for (dimension, old, new), count in sorted(flows.items())
        ],
        ["workspace_id", "day", "dimension", "from_value", "to_value"],
        f"count = {flow_table}.count + excluded.count",
    )
    # 3. the scores. `*_since` move only with their value. Rows whose values are unchanged
    # are not rewritten (most of them, on a daily refresh): rewriting a million rows to
    # move a timestamp would cost most of the refresh and bloat the table. So `computed_at`
    # is when a refresh last changed (or first wrote) the row.
    rfm_values = "n.rfm_r, n.rfm_f, n.rfm_m, n.rfm_segment" if rfm else "NULL, NULL, NULL, ''"
    written = ["stage", "tier"] + (["rfm_r", "rfm_f", "rfm_m", "rfm_segment"] if rfm else [])
    differs = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    changed = " OR ".join(f"{score}.{c} {differs} excluded.{c}" for c in written)
    # the same test joined up front: a hash join is cheaper than a conflict probe per row
    new_or_changed = " OR ".join(
        ["s.contact_id IS NULL", *(f"s.{c} {differs} n.{c}" for c in written)]
    )
    assignments = ", ".join(f"{c} = excluded.{c}" for c in written)
    with connection.cursor() as cursor:
        # (SQLite needs the WHERE to tell the upsert clause from a join constraint)
        cursor.execute(
            f"{with_sql}INSERT INTO {score} (workspace_id, contact_id, stage, tier, stage_since, "
            "tier_since, rfm_r, rfm_f, rfm_m, rfm_segment, computed_at) "
            f"SELECT %(ws)s, n.contact_id, n.stage, n.tier, %(now)s, %(now)s, {rfm_values}, "
            f"%(now)s FROM {source} n LEFT JOIN {score} s ON s.contact_id = n.contact_id "
            f"WHERE {new_or_changed} "
            "ON CONFLICT (contact_id) DO UPDATE SET "
            f"stage_since = CASE WHEN {score}.stage = excluded.stage "
            f"THEN {score}.stage_since ELSE excluded.stage_since END, "
            f"tier_since = CASE WHEN {score}.tier = excluded.tier "
            f"THEN {score}.tier_since ELSE excluded.tier_since END, "
            f"computed_at = excluded.computed_at, {assignments} WHERE {changed}",
            _adapt(params),
        )


def _next_select(*, rfm: bool, contacts: str = "") -> str:
    """One SELECT of (contact_id, stage, tier[, rfm_r, rfm_f, rfm_m, rfm_segment]) for the
    workspace's contacts (or those whose ids are the placeholders `contacts`): the contacts
    LEFT JOINed to per-contact visit, order and RFM subqueries, each grouped once."""
    contact = _table(Contact)
    daily = _table(DailyEventCount)
    order = _table(Order)
    only = (lambda column: f" AND {column} IN ({contacts})") if contacts else (lambda _: "")
    excluded = ", ".join(_lit(s) for s in EXCLUDED_ORDER_STATUSES)
    visits = (
        "SELECT d.contact_id, "
        "COUNT(DISTINCT CASE WHEN d.day >= %(active_from)s THEN d.day END) AS recent_days, "
        "COUNT(DISTINCT CASE WHEN d.day >= %(window_from)s THEN d.day END) AS window_days "
        f"FROM {daily} d WHERE d.workspace_id = %(ws)s AND d.day >= %(visits_from)s "
        f"AND d.day <= %(today)s AND d.count > 0{only('d.contact_id')} GROUP BY d.contact_id"
    )
    orders = (
        "SELECT o.contact_id, COUNT(*) AS n, SUM(o.total_fen - o.refunded_fen) AS spend "
        f"FROM {order} o WHERE o.workspace_id = %(ws)s AND o.contact_id IS NOT NULL "
        "AND o.placed_at > %(tier_from)s AND o.placed_at <= %(now)s "
        f"AND o.status NOT IN ({excluded}){only('o.contact_id')} GROUP BY o.contact_id"
    )
    stage = (
        f"CASE WHEN c.first_seen_at > %(new_from)s THEN {_lit(LifecycleStage.NEW)} "
        f"WHEN c.last_seen_at <= %(churned_from)s THEN {_lit(LifecycleStage.CHURNED)} "
        "WHEN v.recent_days > 0 OR v.window_days > %(max_visits)s "
        f"THEN {_lit(LifecycleStage.ACTIVE)} "
        f"ELSE {_lit(LifecycleStage.DORMANT)} END"
    )
    # no order in the window: n and spend are NULL, every comparison fails, "none"
    tier = (
        "CASE WHEN o.spend >= %(high_spend)s AND o.n >= %(high_orders)s "
        f"THEN {_lit(ValueTier.HIGH)} "
        f"WHEN o.spend >= %(mid_spend)s THEN {_lit(ValueTier.MID)} "
        f"WHEN o.n > 0 THEN {_lit(ValueTier.LOW)} "
        f"ELSE {_lit(ValueTier.NONE)} END"
    )
    columns = f"c.id AS contact_id, {stage} AS stage, {tier} AS tier"
    joins = (
        f"LEFT JOIN ({visits}) v ON v.contact_id = c.id "
        f"LEFT JOIN ({orders}) o ON o.contact_id = c.id "
    )
    if rfm:
        columns += (
            ", q.r AS rfm_r, q.f AS rfm_f, q.m AS rfm_m, "
            f"{_segment_sql('q.r', 'q.f')} AS rfm_segment"
        )
        joins += f"LEFT JOIN {_RANKS} q ON q.contact_id = c.id "
    return f"SELECT {columns} FROM {contact} c {joins}WHERE c.workspace_id = %(ws)s{only('c.id')}"


def _ranks_select() -> str:
    """The buyers' RFM quintiles: 1 + (rank - 1) × 5 / buyers, where tied values share the
    lowest rank of their run (RANK). So equal values always score alike (every one-time
    buyer has F = 1), and with distinct values each score holds a fifth of the buyers."""
    stats = _table(ContactStats)

    def quintile(order: str) -> str:
        return f"1 + (RANK() OVER (ORDER BY {order}) - 1) * 5 / COUNT(*) OVER ()"

    return (
        "SELECT st.contact_id, "
        f"{quintile('st.last_order_at')} AS r, "
        f"{quintile('st.order_count')} AS f, "
        f"{quintile('st.net_spend_fen')} AS m "
        f"FROM {stats} st WHERE st.workspace_id = %(ws)s AND st.order_count > 0 "
        "AND st.last_order_at IS NOT NULL"
    )


def _params(workspace: Workspace, values: dict[str, int], now: datetime.datetime) -> dict:
    """The statement parameters: instants for the timestamp windows, calendar days (the
    workspace's time zone, as DailyEventCount) for the visit windows."""
    today = now.astimezone(zoneinfo.ZoneInfo(workspace.timezone)).date()
    days = datetime.timedelta
    active_from = today - days(values["active_days"] - 1)
    window_from = today - days(values["dormant_window_days"] - 1)
    return {
        "ws": int(workspace.pk),
        "now": now,
        "today": today,
        "new_from": now - days(values["new_days"]),
        "churned_from": now - days(values["churned_days"]),
        "active_from": active_from,
        "window_from": window_from,
        "visits_from": min(active_from, window_from),
        "max_visits": values["dormant_max_visits"],
        "tier_from": now - days(values["tier_window_days"]),
        "high_spend": values["high_spend_fen"],
        "high_orders": values["high_min_orders"],
        "mid_spend": values["mid_spend_fen"],
    }


def _adapt(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters for Django's cursor: SQLite compares dates and date-times as the text
    Django stores; PostgreSQL takes them typed."""
    if connection.vendor != "sqlite":
        return params
    ops = connection.ops
    adapted = {}
    for key, value in params.items():
        if isinstance(value, datetime.datetime):
            value = ops.adapt_datetimefield_value(value)
        elif isinstance(value, datetime.date):
            value = ops.adapt_datefield_value(value)
        adapted[key] = value
    return adapted


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _lit(value: str) -> str:
    """A constant of ours (a choice value) as an SQL string literal."""
    text = str(value)
    if not text.replace("_", "").isalnum():  # pragma: no cover - only our constants
        raise ValueError(f"not a plain constant: {text!r}")
    return f"'{text}'"

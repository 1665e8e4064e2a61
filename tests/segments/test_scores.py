"""Lifecycle stages, value tiers and RFM scores (segments/scores.py, docs/tiers.md): every
boundary of the defaults, the precedence, refunds, quintiles and named segments, flows
recorded once per change, `*_since` kept, settings, workspace isolation, and the real-time
`contact_ids` path agreeing with a full refresh."""

import datetime
import itertools

import pytest
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError, ValidationError
from siyu.core.models import AuditLog
from siyu.segments.models import ContactScore, ScoringSettings, StageFlow
from siyu.segments.scores import (
    DEFAULTS,
    scores_refresh,
    scoring_settings,
    validate_scoring_settings,
)
from siyu.segments.scores_queries import stage_flows, stage_overview
from siyu.segments.scoring_actions import settings_update
from siyu.tracking.models import DailyEventCount, Order
from siyu.tracking.orders import OrderInput, order_create, order_refund
from tests.tracking.conftest import collector, write_key  # noqa: F401 (fixtures)

UTC = datetime.UTC
# 20:00 UTC is 04:00 the next day in Shanghai (the cast workspace's time zone): a visit day
# counted in UTC instead of the workspace's zone would be off by one and fail the tests.
NOW = datetime.datetime(2026, 6, 15, 20, 0, tzinfo=UTC)
TODAY = datetime.date(2026, 6, 16)  # NOW's date in Asia/Shanghai
DAY = datetime.timedelta(days=1)
SECOND = datetime.timedelta(seconds=1)
_ids = itertools.count()


@pytest.fixture
def ws(cast):
    return cast.workspace


@pytest.fixture
def person(make_contact, ws):
    """person(first=ago, last=ago, workspace=ws) -> a contact first / last seen that long
    before NOW (timedelta, or whole days); last defaults to one day ago."""

    def make(first=100, last=1, workspace=None, name="客户"):
        contact = make_contact(name=name, workspace=workspace or ws)
        first = first if isinstance(first, datetime.timedelta) else first * DAY
        last = last if isinstance(last, datetime.timedelta) else last * DAY
        Contact.objects.filter(pk=contact.pk).update(
            first_seen_at=NOW - first, last_seen_at=NOW - min(first, last)
        )
        contact.refresh_from_db()
        return contact

    return make


def visit(contact, *days_ago, event="page", count=1):
    """Counted events on these days (before TODAY, the workspace's date), written straight
    into the rollup. Call it after `buy`: an order recomputes the contact's rollup from its
    raw events, which these rows have none of."""
    DailyEventCount.objects.bulk_create(
        DailyEventCount(
            workspace_id=contact.workspace_id,
            contact=contact,
            day=TODAY - ago * DAY,
            event=event,
            count=count,
        )
        for ago in days_ago
    )


def buy(contact, *amounts_fen, ago=5, step=25):
    """Orders through the order action, the first `ago` days before NOW, then every `step`
    days further back (`ago` may be a timedelta for one exact instant)."""
    orders = []
    for n, fen in enumerate(amounts_fen):
        when = ago if isinstance(ago, datetime.timedelta) else (ago + n * step) * DAY
        order, _ = order_create(
            workspace=contact.workspace,
            actor=Actor.system("test"),
            contact=contact,
            data=OrderInput(
                external_id=f"T-{next(_ids)}", currency="CNY", total_fen=fen, placed_at=NOW - when
            ),
        )
        orders.append(order)
    return orders


def refund(order, amount_fen=None):
    order_refund(
        workspace=order.workspace, actor=Actor.system("test"), order=order, amount_fen=amount_fen
    )


def score(contact) -> ContactScore:
    return ContactScore.objects.get(contact=contact)


def flows(ws) -> list[tuple]:
    return sorted(
        StageFlow.objects.filter(workspace=ws).values_list(
            "day", "dimension", "from_value", "to_value", "count"
        )
    )


# --- stages ------------------------------------------------------------------------------------


def test_stage_boundaries_and_precedence(ws, person):
    cases = {
        # new: first seen within 14 days (the instant exactly 14 days ago is outside)
        "new, 14 days less a second": (dict(first=14 * DAY - SECOND), [], "new"),
        "not new at exactly 14 days": (dict(first=14, last=14), [], "dormant"),
        "new beats active": (dict(first=1, last=0), [0, 1], "new"),
        # churned: not seen within 90 days
        "churned at exactly 90 days": (dict(first=200, last=90), [], "churned"),
        "not churned, 90 days less 1s": (dict(first=200, last=90 * DAY - SECOND), [], "dormant"),
        "churned beats old visits": (dict(first=300, last=120), [120, 121, 122], "churned"),
        # active: a visit day within the 7 days ending today...
        "visit today": (dict(), [0], "active"),
        "visit 6 days ago": (dict(), [6], "active"),
        "visit exactly 7 days ago": (dict(), [7], "dormant"),
        # ... or more than 2 visit days within the 30 days ending today
        "2 visit days in 30": (dict(), [10, 20], "dormant"),
        "3 visit days in 30": (dict(), [10, 20, 29], "active"),
        "third visit 30 days ago": (dict(), [10, 20, 30], "dormant"),
        "never visited": (dict(), [], "dormant"),
    }  # fmt: skip
    contacts = {}
    for label, (seen, days, _) in cases.items():
        contacts[label] = person(**seen)
        visit(contacts[label], *days)
    two_events_one_day = person()
    visit(two_events_one_day, 10, 20)
    visit(two_events_one_day, 10, event="Product Viewed", count=3)

    result = scores_refresh(ws, now=NOW)

    assert {label: score(c).stage for label, c in contacts.items()} == {
        label: expected for label, (_, _, expected) in cases.items()
    }
    assert score(two_events_one_day).stage == "dormant"  # a visit is a day, not an event
    # complete: every contact of the workspace has exactly one score
    total = Contact.objects.filter(workspace=ws).count()
    assert ContactScore.objects.filter(workspace=ws).count() == total == result["contacts"]


def test_visit_days_follow_the_workspace_time_zone(ws, person):
    contact = person()
    visit(contact, 7)  # the 7th day before Shanghai's today: the 6th before UTC's (2026-06-15)
    scores_refresh(ws, now=NOW)
    assert score(contact).stage == "dormant"
    ws.timezone = "UTC"
    ws.save(update_fields=["timezone"])
    scores_refresh(ws, now=NOW)
    assert score(contact).stage == "active"


def test_visits_from_ingested_events(cast, ws, collector, django_capture_on_commit_callbacks):  # noqa: F811
    now = timezone.now()
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": "u-score",
            "messageId": f"score-{n}",
            "timestamp": (now - datetime.timedelta(days=ago)).isoformat(),
        }
        for n, ago in enumerate([40, 12, 12, 11])
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200, response.content
    contact = Contact.objects.get(workspace=ws)
    scores_refresh(ws)  # first seen 40 days ago, 2 visit days in the last 30, none this week
    assert score(contact).stage == "dormant"
    with django_capture_on_commit_callbacks(execute=True):
        collector.post(
            "/v1/track",
            {"event": "Page", "userId": "u-score", "messageId": "score-x",
             "timestamp": (now - datetime.timedelta(days=20)).isoformat()},
        )  # fmt: skip
    scores_refresh(ws)
    assert score(contact).stage == "active"


# --- tiers -------------------------------------------------------------------------------------


def twelve(total_fen: int, n: int = 12) -> list[int]:
    """n order amounts adding up to total_fen."""
    each = total_fen // n
    return [each] * (n - 1) + [total_fen - each * (n - 1)]


def test_tier_boundaries_refunds_and_window(ws, person):
    contacts = {label: person() for label in (
        "high: 5,000.00 in 12 orders", "mid: 4,999.99 in 12 orders", "mid: 6,000 in 11 orders",
        "mid: 1,000.00", "low: 999.99", "low: a free order", "none: no order",
        "none: order exactly 365 days ago", "mid: 1,000 365 days less a second ago",
        "mid: partial refund to 4,999.99", "mid: fully refunded 12th order",
        "none: only a fully refunded order", "high: a 13th order refunded",
    )}  # fmt: skip
    c = contacts
    buy(c["high: 5,000.00 in 12 orders"], *twelve(500_000))
    buy(c["mid: 4,999.99 in 12 orders"], *twelve(499_999))
    buy(c["mid: 6,000 in 11 orders"], *twelve(600_000, 11))
    buy(c["mid: 1,000.00"], 100_000)
    buy(c["low: 999.99"], 99_999)
    buy(c["low: a free order"], 0)
    buy(c["none: order exactly 365 days ago"], 900_000, ago=365 * DAY)
    buy(c["mid: 1,000 365 days less a second ago"], 100_000, ago=365 * DAY - SECOND)
    orders = buy(c["mid: partial refund to 4,999.99"], *twelve(520_000))
    refund(orders[0], 20_001)
    orders = buy(c["mid: fully refunded 12th order"], *twelve(600_000))
    refund(orders[-1])
    refund(buy(c["none: only a fully refunded order"], 900_000)[0])
    orders = buy(c["high: a 13th order refunded"], *twelve(600_000, 13))
    refund(orders[3])

    scores_refresh(ws, now=NOW)

    assert {label: score(contact).tier for label, contact in contacts.items()} == {
        label: label.split(":")[0] for label in contacts
    }


def test_old_orders_still_count_for_rfm_but_not_the_tier(ws, person):
    contact = person()
    buy(contact, 900_000, ago=400)
    scores_refresh(ws, now=NOW)
    row = score(contact)
    assert row.tier == "none"
    assert (row.rfm_r, row.rfm_f, row.rfm_m) == (1, 1, 1)  # the only buyer


# --- RFM ---------------------------------------------------------------------------------------


# name: (days since the last order, number of orders, net spend fen) -> (R, F, M, segment)
RFM_POPULATION = {
    "A": ((5, 5, 10_000), (5, 5, 5, "champions")),
    "B": ((1, 1, 9_000), (5, 1, 5, "new_customers")),
    "C": ((50, 1, 8_000), (4, 1, 4, "promising")),
    "D": ((40, 4, 7_000), (4, 4, 4, "loyal")),
    "E": ((100, 3, 6_000), (3, 3, 3, "need_attention")),
    "F": ((90, 2, 5_000), (3, 2, 3, "about_to_sleep")),
    "G": ((200, 5, 4_000), (2, 5, 2, "cant_lose")),
    "H": ((190, 3, 3_000), (2, 3, 2, "at_risk")),
    "I": ((300, 2, 2_000), (1, 2, 1, "hibernating")),
    "J": ((290, 4, 1_000), (1, 4, 1, "at_risk")),
}


def test_rfm_quintiles_and_named_segments(ws, person):
    contacts = {}
    for name, ((ago, n, spend), _) in RFM_POPULATION.items():
        contacts[name] = person(name=name)
        buy(contacts[name], *[spend // n] * n, ago=ago, step=1)
    no_orders = person(name="K")

    scores_refresh(ws, now=NOW)

    got = {
        name: (s.rfm_r, s.rfm_f, s.rfm_m, s.rfm_segment)
        for name, s in ((n, score(c)) for n, c in contacts.items())
    }
    assert got == {name: expected for name, (_, expected) in RFM_POPULATION.items()}
    row = score(no_orders)
    assert (row.rfm_r, row.rfm_f, row.rfm_m, row.rfm_segment) == (None, None, None, "")


def test_rfm_ties_score_alike(ws, person):
    """Buyers alike in every way score alike (the lowest score of their run); one-time
    buyers all have F = 1 however many there are, so "new customers" exist."""
    twins = [person(name=f"twin {n}") for n in range(5)]
    for contact in twins:
        buy(contact, 10_000, ago=3 * DAY)
    assert len({(score_of(ws, c)) for c in twins}) == 1
    # six one-time buyers, four regulars: the one-time buyers share F = 1
    once = [person(name=f"once {n}") for n in range(6)]
    for n, contact in enumerate(once):
        buy(contact, 5_000 + n, ago=(n + 1) * DAY)
    regulars = [person(name=f"regular {n}") for n in range(4)]
    for n, contact in enumerate(regulars):
        buy(contact, *[3_000] * (2 + n), ago=(20 + n) * DAY, step=1)
    scores_refresh(ws, now=NOW)
    assert {score(c).rfm_f for c in once} == {1}
    assert score(once[0]).rfm_segment == "new_customers"  # the most recent one-time buyer
    assert [score(c).rfm_f for c in regulars] == sorted(score(c).rfm_f for c in regulars)
    assert score(regulars[-1]).rfm_f == 5


def score_of(ws, contact) -> tuple:
    scores_refresh(ws, now=NOW)
    row = score(contact)
    return (row.rfm_r, row.rfm_f, row.rfm_m, row.rfm_segment)


# --- flows and *_since -------------------------------------------------------------------------


def test_flows_recorded_once_per_change_and_since_kept(ws, person):
    old = person()
    young = person(first=1, last=1)
    third = person()
    first = scores_refresh(ws, now=NOW)
    assert (first["contacts"], first["stage_changed"], first["tier_changed"]) == (3, 3, 3)
    day1 = [
        (TODAY, "stage", "", "dormant", 2),
        (TODAY, "stage", "", "new", 1),
        (TODAY, "tier", "", "none", 3),
    ]
    assert flows(ws) == day1

    again = scores_refresh(ws, now=NOW + 3600 * SECOND)  # nothing changed: nothing recorded
    assert (again["contacts"], again["stage_changed"], again["tier_changed"]) == (3, 0, 0)
    assert flows(ws) == day1
    row = score(old)  # an unchanged row is not rewritten
    assert (row.stage_since, row.tier_since, row.computed_at) == (NOW, NOW, NOW)

    buy(old, 150_000, ago=3600 * SECOND)
    visit(old, 0)
    moved = scores_refresh(ws, now=NOW + 7200 * SECOND)
    assert (moved["stage_changed"], moved["tier_changed"]) == (1, 1)
    row = score(old)
    assert (row.stage, row.tier) == ("active", "mid")
    assert row.stage_since == row.tier_since == row.computed_at == NOW + 7200 * SECOND
    assert score(young).stage_since == NOW
    day1 += [(TODAY, "stage", "dormant", "active", 1), (TODAY, "tier", "none", "mid", 1)]
    assert flows(ws) == sorted(day1)
    scores_refresh(ws, now=NOW + 10800 * SECOND)
    assert flows(ws) == sorted(day1)

    # the same move later the same day adds to that day's row
    visit(third, 0)
    assert scores_refresh(ws, now=NOW + 14400 * SECOND)["stage_changed"] == 1
    day1[day1.index((TODAY, "stage", "dormant", "active", 1))] = (
        TODAY, "stage", "dormant", "active", 2
    )  # fmt: skip
    assert flows(ws) == sorted(day1)

    later = NOW + 20 * DAY  # `young` is no longer new, nobody has visited for 20 days
    scores_refresh(ws, now=later)
    day21 = TODAY + 20 * DAY
    expected = sorted(
        day1 + [(day21, "stage", "active", "dormant", 2), (day21, "stage", "new", "dormant", 1)]
    )
    assert flows(ws) == expected
    assert score(old).tier_since == NOW + 7200 * SECOND  # still mid
    assert stage_flows(ws, days=30, now=later) == [
        {"day": day, "dimension": dim, "from": a, "to": b, "count": n}
        for day, dim, a, b, n in expected
    ]
    assert [f["day"] for f in stage_flows(ws, days=5, now=later)] == [day21, day21]
    assert stage_flows(ws, days=30, dimension="tier", now=later) == [
        {"day": TODAY, "dimension": "tier", "from": "", "to": "none", "count": 3},
        {"day": TODAY, "dimension": "tier", "from": "none", "to": "mid", "count": 1},
    ]


def test_overview(ws, person):
    active = person()
    buy(active, *twelve(600_000))
    visit(active, 0)
    person()
    person(first=1)
    scores_refresh(ws, now=NOW)
    person()  # created after the refresh: not scored yet
    overview = stage_overview(ws)
    assert overview["stages"] == {"new": 1, "active": 1, "dormant": 1, "churned": 0}
    assert overview["tiers"] == {"high": 1, "mid": 0, "low": 0, "none": 2}
    assert overview["matrix"]["active"] == {"high": 1, "mid": 0, "low": 0, "none": 0}
    assert overview["matrix"]["dormant"]["none"] == 1
    assert (overview["contacts"], overview["scored"], overview["unscored"]) == (4, 3, 1)
    assert overview["rfm_scored"] == 1 and sum(overview["rfm"].values()) == 1
    assert overview["computed_at"] == NOW


# --- settings ----------------------------------------------------------------------------------


def test_settings_overrides_apply_and_are_audited(cast, ws, person):
    fresh = person(first=20)
    small = person()
    buy(small, 60_000)
    scores_refresh(ws, now=NOW)
    assert (score(fresh).stage, score(small).tier) == ("dormant", "low")

    settings_update(
        workspace=ws, actor=cast.owner.actor, values={"new_days": 30, "mid_spend_fen": 50_000}
    )
    assert scoring_settings(ws) == {**DEFAULTS, "new_days": 30, "mid_spend_fen": 50_000}
    entry = AuditLog.objects.get(workspace=ws, action="scoring_settings.update")
    assert (entry.before, entry.after) == ({}, {"new_days": 30, "mid_spend_fen": 50_000})
    scores_refresh(ws, now=NOW)
    assert (score(fresh).stage, score(small).tier) == ("new", "mid")

    # the same values again: no change, no audit row; {} returns to the defaults
    settings_update(
        workspace=ws, actor=cast.owner.actor, values={"new_days": 30, "mid_spend_fen": 50_000}
    )
    assert AuditLog.objects.filter(action="scoring_settings.update").count() == 1
    settings_update(workspace=ws, actor=cast.owner.actor, values={})
    assert scoring_settings(ws) == DEFAULTS
    assert scoring_settings(cast.outsider_workspace) == DEFAULTS


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"nope": 1}, "nope"),
        ({"new_days": "14"}, "new_days"),
        ({"new_days": 1.5}, "new_days"),
        ({"new_days": True}, "new_days"),
        ({"new_days": None}, "new_days"),
        ({"new_days": -1}, "new_days"),
        ({"churned_days": 0}, "churned_days"),
        ({"dormant_max_visits": -1}, "dormant_max_visits"),
        ({"high_min_orders": 0}, "high_min_orders"),
        ({"tier_window_days": 100_000}, "tier_window_days"),
        ({"mid_spend_fen": -5}, "mid_spend_fen"),
        ({"mid_spend_fen": 500_000}, "mid_spend_fen"),  # mid ≥ high (the default)
        ({"high_spend_fen": 100_000}, "high_spend_fen"),  # high ≤ mid (the default)
        ({"mid_spend_fen": 700_000, "high_spend_fen": 600_000}, "high_spend_fen"),
        ({"active_days": 31}, "active_days"),
        ({"dormant_window_days": 6}, "dormant_window_days"),
        ({"churned_days": 29}, "churned_days"),
        ([("new_days", 3)], "values"),
    ],
)
def test_bad_settings_name_the_key_and_change_nothing(cast, ws, values, field):
    settings_update(workspace=ws, actor=cast.owner.actor, values={"new_days": 10})
    with pytest.raises(ValidationError) as info:
        settings_update(workspace=ws, actor=cast.owner.actor, values=values)
    assert isinstance(info.value, SiyuError)
    assert info.value.field == field and info.value.details["field"] == field
    assert field in info.value.message
    assert ScoringSettings.objects.get(workspace=ws).values == {"new_days": 10}
    assert AuditLog.objects.filter(action="scoring_settings.update").count() == 1


def test_good_settings_are_returned_cleaned():
    values = {"active_days": 30, "dormant_window_days": 30, "churned_days": 30, "mid_spend_fen": 0}
    assert validate_scoring_settings(values) == values
    assert validate_scoring_settings({}) == {}


def test_unknown_stored_keys_are_ignored(ws):
    ScoringSettings.objects.create(workspace=ws, values={"new_days": 3, "retired_key": 9})
    assert scoring_settings(ws) == {**DEFAULTS, "new_days": 3}


# --- isolation and the real-time path ----------------------------------------------------------


def test_workspace_isolation(cast, ws, person):
    other = cast.outsider_workspace
    mine = person()
    buy(mine, 10_000, ago=1)
    theirs = [person(workspace=other) for _ in range(4)]
    for n, contact in enumerate(theirs):  # older buyers: they would push `mine` up to R5
        buy(contact, 50_000 * (n + 1), ago=30 + n)

    result = scores_refresh(ws, now=NOW)
    assert result["contacts"] == 1
    assert not ContactScore.objects.filter(workspace=other).exists()
    row = score(mine)
    assert (row.rfm_r, row.rfm_f, row.rfm_m) == (1, 1, 1)  # ranked among its own buyers only

    mine_before = ContactScore.objects.filter(workspace=ws).values()[0]
    scores_refresh(other, now=NOW + 100 * DAY)  # `mine` would be churned by then
    assert ContactScore.objects.filter(workspace=other).count() == 4
    assert ContactScore.objects.filter(workspace=ws).values()[0] == mine_before
    assert {f[0] for f in flows(other)} == {TODAY + 100 * DAY}
    assert {f[0] for f in flows(ws)} == {TODAY}


def test_contact_ids_path_agrees_with_a_full_refresh(cast, ws, person):
    mover = person()
    buyer = person()
    still = person(first=14 * DAY - 1800 * SECOND)  # new at NOW, no longer an hour later
    buy(still, 20_000)
    theirs = person(workspace=cast.outsider_workspace)
    scores_refresh(ws, now=NOW)
    assert (score(mover).stage, score(mover).tier, score(mover).rfm_r) == ("dormant", "none", None)
    before_rfm = (score(still).rfm_r, score(still).rfm_segment)

    buy(mover, 200_000, ago=SECOND)
    visit(mover, 0, 1)
    buy(buyer, 5_000, ago=SECOND)
    newcomer = person(first=SECOND)
    later = NOW + 3600 * SECOND
    result = scores_refresh(ws, now=later, contact_ids=[mover.pk, buyer.pk, newcomer.pk, theirs.pk])
    assert (result["contacts"], result["stage_changed"], result["tier_changed"]) == (3, 2, 3)
    assert (score(mover).stage, score(mover).tier) == ("active", "mid")
    assert (score(buyer).stage, score(buyer).tier) == ("dormant", "low")
    assert (score(newcomer).stage, score(newcomer).tier) == ("new", "none")
    assert not ContactScore.objects.filter(contact=theirs).exists()
    # RFM is kept until the next full refresh; other contacts are not touched
    assert (score(mover).rfm_r, score(newcomer).rfm_r) == (None, None)
    assert (score(still).stage, score(still).computed_at) == ("new", NOW)
    assert (score(still).rfm_r, score(still).rfm_segment) == before_rfm
    partial = {c.pk: score(c) for c in (mover, buyer, newcomer)}
    recorded = flows(ws)
    assert (TODAY, "stage", "dormant", "active", 1) in recorded
    assert (TODAY, "tier", "none", "mid", 1) in recorded

    # the full refresh finds nothing left to change in them (only `still` moves)
    full = scores_refresh(ws, now=later)
    assert (full["stage_changed"], full["tier_changed"]) == (1, 0)
    assert flows(ws) == sorted(recorded + [(TODAY, "stage", "new", "dormant", 1)])
    for pk, row in partial.items():
        now_row = ContactScore.objects.get(contact_id=pk)
        assert (now_row.stage, now_row.tier, now_row.stage_since, now_row.tier_since) == (
            row.stage,
            row.tier,
            row.stage_since,
            row.tier_since,
        )
    assert score(mover).rfm_r is not None and score(buyer).rfm_r is not None
    assert scores_refresh(ws, now=later, contact_ids=[])["contacts"] == 0


def test_order_excluded_statuses_exist():
    """The tier skips fully refunded orders; if a cancelled status is ever added to
    OrderStatus it must be excluded too (scores.EXCLUDED_ORDER_STATUSES)."""
    from siyu.segments.scores import EXCLUDED_ORDER_STATUSES
    from siyu.tracking.models import OrderStatus

    assert set(EXCLUDED_ORDER_STATUSES) <= set(OrderStatus.values)
    assert {s for s in OrderStatus.values if "cancel" in s} <= set(EXCLUDED_ORDER_STATUSES)
    assert Order._meta.get_field("status").default not in EXCLUDED_ORDER_STATUSES

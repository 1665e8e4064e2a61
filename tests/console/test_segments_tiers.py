"""分层与价值 on a contact's page, 客户分层 (counts by stage and tier, the matrix, the moves
of the last 30 days, recalculation) and the thresholds form, per role."""

import pytest

from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.segments import actions
from siyu.segments.models import ContactScore, ScoringSettings
from siyu.segments.scores import DEFAULTS

SYSTEM = Actor.system("test")


def score(cast, contact, stage, tier, **extra) -> ContactScore:
    """A score as scores_refresh writes it (the tests here are about showing it)."""
    return ContactScore.objects.create(
        workspace=cast.workspace, contact=contact, stage=stage, tier=tier, **extra
    )


# --- the contact's card -------------------------------------------------------------------------


def test_card_says_when_a_contact_is_not_scored_yet(cast, console, make_contact):
    contact = make_contact("王小明")
    html = console("owner").get(f"/w/brand/contacts/{contact.pk}/").content.decode()
    assert "分层与价值" in html
    assert "尚未计算，稍后刷新" in html and "不在任何分群中。" in html


def test_card_shows_stage_tier_rfm_clv_and_segments(cast, console, make_contact):
    contact = make_contact("王小明", owner=cast.agent)
    score(
        cast,
        contact,
        "active",
        "high",
        rfm_r=5,
        rfm_f=4,
        rfm_m=3,
        rfm_segment="champions",
        p_alive=0.873,
        expected_purchases_90d=2.46,
        expected_value_12m_fen=250_000,
    )
    segment = actions.segment_create(
        workspace=cast.workspace,
        actor=SYSTEM,
        name="高价值",
        rule={"type": "score", "field": "tier", "op": "eq", "value": "high"},
    )
    page = console("agent").get(f"/w/brand/contacts/{contact.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "活跃用户" in html and "高消费" in html
    assert "R 5 · F 4 · M 3" in html and "重要价值客户" in html
    assert "87%" in html and "2.5" in html and "¥2500.00" in html
    assert f'href="/w/brand/segments/{segment.pk}/"' in html and "高价值" in html
    assert "尚未计算" not in html


# --- 客户分层 -----------------------------------------------------------------------------------


def test_overview_before_any_scoring_has_an_empty_state(cast, console, make_contact):
    make_contact("王小明")
    page = console("analyst").get("/w/brand/tiers/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "尚未计算" in html and "重新计算" not in html  # analysts may not recalculate
    assert page.context["data"]["unscored"] == 1


def test_recalculate_scores_everyone_and_records_the_moves(cast, console, make_contact):
    for name in ("甲", "乙", "丙"):
        make_contact(name)
    assert console("operator").post("/w/brand/tiers/recompute/").status_code == 403
    assert not ContactScore.objects.exists()
    response = console("admin").post("/w/brand/tiers/recompute/", follow=True)
    assert response.redirect_chain[-1][0] == "/w/brand/tiers/"
    assert "已开始重新计算" in response.content.decode()
    assert ContactScore.objects.filter(workspace=cast.workspace, stage="new").count() == 3
    page = console("owner").get("/w/brand/tiers/")
    data = page.context["data"]
    assert (data["contacts"], data["scored"], data["unscored"]) == (3, 3, 0)
    stages = {s["key"]: s["n"] for s in page.context["stages"]}
    assert stages == {"new": 3, "active": 0, "dormant": 0, "churned": 0}
    moves = page.context["flows"]["moves"]
    assert [(m["from_label"], m["to_label"], m["count"]) for m in moves] == [
        ("首次计算", "新用户", 3)
    ]
    html = page.content.decode()
    assert 'data-move="first-new"' in html
    # the row and column names open the built-in segments the refresh created
    new_segment = page.context["stages"][0]["segment"]
    assert new_segment and f'href="/w/brand/segments/{new_segment}/"' in html


def test_overview_matrix_and_tier_moves(cast, console, make_contact):
    people = [make_contact(f"客户{i}") for i in range(4)]
    score(cast, people[0], "active", "high", rfm_r=5, rfm_f=5, rfm_m=5, rfm_segment="champions")
    score(cast, people[1], "active", "low", rfm_r=3, rfm_f=2, rfm_m=1, rfm_segment="promising")
    score(cast, people[2], "dormant", "low")
    score(cast, people[3], "churned", "none")
    page = console("agent").get("/w/brand/tiers/")
    assert page.status_code == 200
    cells = {
        (row["key"], cell["tier"]): cell["n"]
        for row in page.context["matrix"]
        for cell in row["cells"]
    }
    assert cells[("active", "high")] == 1 and cells[("active", "low")] == 1
    assert cells[("dormant", "low")] == 1 and cells[("churned", "none")] == 1
    assert sum(cells.values()) == 4
    tiers = {t["key"]: t["n"] for t in page.context["tiers"]}
    assert tiers == {"high": 1, "mid": 0, "low": 2, "none": 1}
    rfm = {r["key"]: r["n"] for r in page.context["rfm"] if r["n"]}
    assert rfm == {"champions": 1, "promising": 1}
    html = page.content.decode()
    assert "阶段 × 价值分层" in html and "重要价值客户" in html
    # agents may look but not make a segment of a cell
    assert "?stage=active&amp;tier=high" not in html
    owner = console("owner").get("/w/brand/tiers/", {"flows": "tier"})
    assert owner.context["dimension"] == "tier"
    assert "?stage=active&amp;tier=high" in owner.content.decode()


# --- thresholds ---------------------------------------------------------------------------------


def test_thresholds_form_shows_defaults(cast, console):
    page = console("admin").get("/w/brand/tiers/settings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'placeholder="14"' in html and 'placeholder="5000.00"' in html
    assert "新用户：首次出现在最近" in html and "默认 90" in html
    for role in ("operator", "analyst", "agent"):
        assert console(role).get("/w/brand/tiers/settings/").status_code == 403
    denied = console("operator").post("/w/brand/tiers/settings/", {"new_days": "30"})
    assert denied.status_code == 403
    assert not ScoringSettings.objects.exists()


def test_thresholds_save_in_days_and_yuan(cast, console):
    client = console("owner")
    response = client.post(
        "/w/brand/tiers/settings/",
        {"new_days": "21", "high_spend_fen": "8000", "mid_spend_fen": ""},
    )
    assert response.status_code == 302
    stored = ScoringSettings.objects.get(workspace=cast.workspace).values
    assert stored == {"new_days": 21, "high_spend_fen": 800_000}
    html = client.get("/w/brand/tiers/settings/").content.decode()
    assert 'value="21"' in html and 'value="8000.00"' in html
    assert AuditLog.objects.filter(action="scoring_settings.update").count() == 1
    client.post("/w/brand/tiers/settings/", {"reset": "1", "new_days": "21"})
    assert ScoringSettings.objects.get(workspace=cast.workspace).values == {}


@pytest.mark.parametrize(
    ("form", "key", "text"),
    [
        ({"mid_spend_fen": "9000"}, "mid_spend_fen", "必须小于高消费金额（5000.00）"),
        ({"new_days": "abc"}, "new_days", "应为整数"),
        ({"high_spend_fen": "1.234"}, "high_spend_fen", "应为以元为单位的金额"),
        ({"active_days": "0"}, "active_days", "不能小于 1"),
    ],
)
def test_threshold_errors_are_shown_beside_their_setting(cast, console, form, key, text):
    response = console("admin").post("/w/brand/tiers/settings/", form)
    assert response.status_code == 422
    rows = {row["key"]: row for group in response.context["groups"] for row in group["rows"]}
    assert text in rows[key]["error"]
    assert rows[key]["value"] == form[key]  # what was typed stays
    assert f'id="e-{key}"' in response.content.decode()
    assert not ScoringSettings.objects.exists()
    assert DEFAULTS["new_days"] == 14

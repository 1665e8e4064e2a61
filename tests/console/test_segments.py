"""Segment pages in the console: the list, the builder with its live count, create / edit /
archive / refresh, the detail page (rule in words, members, history), per role; a denied
request changes nothing."""

import datetime
import json

import pytest

from siyu.contacts import actions as contact_actions
from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.segments import actions
from siyu.segments.models import Segment, SegmentChange, SegmentSize
from siyu.tracking.models import DailyEventCount

HTMX = {"HTTP_HX_REQUEST": "true"}
SYSTEM = Actor.system("test")
CITY = {"type": "field", "field": "city", "op": "eq", "value": "上海"}


def rule(*conditions, kind="and") -> dict:
    return {"type": kind, "rules": list(conditions)}


@pytest.fixture
def people(cast):
    """Four contacts: two in 上海 (one owned by the agent), one in 北京, one without a city."""
    ws = cast.workspace

    def person(name, city="", owner=None):
        return contact_actions.contact_create(
            workspace=ws,
            actor=SYSTEM,
            profile={"name": name, "city": city},
            owner_id=owner.staff.pk if owner else None,
        )

    return {
        "wang": person("王芳", "上海"),
        "li": person("李娜", "上海", owner=cast.agent),
        "zhang": person("张伟", "北京"),
        "chen": person("陈静"),
    }


def make_segment(cast, name="上海客户", the_rule=None, **kw) -> Segment:
    return actions.segment_create(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        name=name,
        rule=the_rule if the_rule is not None else rule(CITY),
        **kw,
    )


def preview(client, the_rule, **extra):
    body = json.dumps({"rule": the_rule, **extra})
    return client.post("/w/brand/segments/preview/", body, content_type="application/json")


# --- list ----------------------------------------------------------------------------------


def test_empty_list_invites_to_create_for_managers_only(cast, console):
    owner = console("owner").get("/w/brand/segments/").content.decode()
    assert "还没有分群" in owner and "新建分群" in owner
    analyst = console("analyst").get("/w/brand/segments/")
    assert analyst.status_code == 200
    html = analyst.content.decode()
    assert "还没有分群" in html and "新建分群" not in html


def test_list_shows_kind_size_trend_and_realtime(cast, console, people):
    make_segment(cast, realtime=True)
    actions.segment_create(
        workspace=cast.workspace, actor=SYSTEM, name="活动名单", kind="static",
        contact_ids=[people["zhang"].pk],
    )  # fmt: skip
    segment = Segment.objects.get(name="上海客户")
    # the first size row a day earlier: the trend shows one point per day
    first = SegmentSize.objects.get(segment=segment)
    SegmentSize.objects.filter(pk=first.pk).update(at=first.at - datetime.timedelta(days=1))
    contact_actions.contact_update(
        workspace=cast.workspace, actor=SYSTEM, contact=people["chen"], profile={"city": "上海"}
    )
    actions.segment_refresh(workspace=cast.workspace, segment=segment)  # a second size row
    page = console("analyst").get("/w/brand/segments/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "上海客户" in html and "活动名单" in html
    assert "动态" in html and "静态" in html and "实时" in html
    row = next(s for s in page.context["rows"] if s.name == "上海客户")
    assert row.size == 3 and row.spark  # the trend line has points
    assert page.context["custom_count"] == 2


def test_builtin_tab_lists_built_ins_in_their_order(cast, console):
    actions.builtins_ensure(cast.workspace)
    page = console("owner").get("/w/brand/segments/", {"tab": "builtin"})
    names = [s.name for s in page.context["rows"]]
    assert names[:4] == ["新用户", "活跃用户", "沉默用户", "流失用户"]
    assert page.context["custom_count"] == 0 and page.context["builtin_count"] == 18
    empty = console("owner").get("/w/brand/segments/").content.decode()
    assert "还没有分群" in empty


def test_navigation_has_segments_and_tiers(cast, console):
    html = console("agent").get("/w/brand/").content.decode()
    assert 'href="/w/brand/segments/"' in html and ">分群<" in html
    assert 'href="/w/brand/tiers/"' in html and ">客户分层<" in html


# --- builder and preview -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin", "operator"])
def test_builder_opens_for_managers(cast, console, role):
    page = console(role).get("/w/brand/segments/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="rule-builder"' in html and "segment_builder.js" in html
    config = page.context["config"]
    assert {f["key"] for f in config["schema"]["contact_fields"]} >= {"city", "owner"}
    assert config["labels"]["ops"]["eq"] == "等于"


@pytest.mark.parametrize("role", ["analyst", "agent"])
def test_builder_and_saving_are_forbidden_for_others(cast, console, role):
    client = console(role)
    assert client.get("/w/brand/segments/new/").status_code == 403
    post = client.post("/w/brand/segments/new/", {"name": "x", "rule": json.dumps(rule(CITY))})
    assert post.status_code == 403
    assert not Segment.objects.exists()
    assert console("outsider").get("/w/brand/segments/new/").status_code == 404


def test_builder_offers_the_workspace_choices(cast, console, people):
    group = contact_actions.tag_group_create(workspace=cast.workspace, actor=SYSTEM, name="兴趣")
    contact_actions.tag_create(workspace=cast.workspace, actor=SYSTEM, group=group, name="咖啡")
    contact_actions.attribute_define(
        workspace=cast.workspace, actor=SYSTEM, key="vip", label="会员等级", type="number"
    )
    DailyEventCount.objects.create(
        workspace=cast.workspace,
        contact=people["wang"],
        day=datetime.date.today(),
        event="Product Viewed",
        count=3,
    )
    other = make_segment(cast)
    config = console("owner").get("/w/brand/segments/new/").context["config"]
    assert config["tags"] == [
        {"group": "兴趣", "tags": [{"id": config["tags"][0]["tags"][0]["id"], "name": "咖啡"}]}
    ]
    assert config["attributes"][0]["key"] == "vip" and config["attributes"][0]["type"] == "number"
    assert config["events"] == ["Product Viewed"]
    assert {"id": other.pk, "name": "上海客户"} in config["segments"]
    assert any(s["name"] == "operator" for s in config["staff"])
    # editing a segment: it is not offered as its own condition
    edit = console("owner").get(f"/w/brand/segments/{other.pk}/edit/").context["config"]
    assert all(s["id"] != other.pk for s in edit["segments"])


def test_builder_opened_from_a_tier_cell_starts_with_that_rule(cast, console):
    page = console("owner").get("/w/brand/segments/new/", {"stage": "active", "tier": "high"})
    seeded = json.loads(page.context["form"]["rule"])
    assert [r["value"] for r in seeded["rules"]] == ["active", "high"]


def test_preview_counts_and_samples(cast, console, people):
    response = preview(console("operator"), rule(CITY))
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert {s["name"] for s in data["sample"]} == {"王芳", "李娜"}
    assert data["sample"][0]["url"].startswith("/w/brand/contacts/")
    assert data["text"] == "城市 等于 上海"
    either = rule(CITY, {**CITY, "value": "北京"}, kind="or")
    assert preview(console("owner"), either).json()["count"] == 3
    assert preview(console("owner"), rule()).json()["count"] == 4


def test_preview_for_an_agent_counts_and_samples_its_own(cast, console, people):
    data = preview(console("agent"), rule(CITY)).json()
    assert data["count"] == 1
    assert [s["name"] for s in data["sample"]] == ["李娜"]


def test_preview_names_the_path_of_a_bad_rule(cast, console, people):
    bad = rule(CITY, rule({**CITY, "op": "gte"}, kind="or"))
    response = preview(console("owner"), bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["path"] == "rule.rules[1].rules[0].op"
    assert "text" in error["message"] or "文本" in error["message"]
    missing = preview(console("owner"), rule({"type": "event", "event": "", "op": "gte"}))
    assert missing.json()["error"]["path"] == "rule.rules[0].event"
    assert missing.json()["error"]["message"] == "应为事件名称"
    garbage = console("owner").post(
        "/w/brand/segments/preview/", "not json", content_type="application/json"
    )
    assert garbage.status_code == 422 and garbage.json()["error"]["path"] == "rule"


def test_preview_refuses_a_rule_that_uses_its_own_segment(cast, console, people):
    first = make_segment(cast)
    second = make_segment(cast, "二号", rule({"type": "segment", "op": "in", "value": first.pk}))
    loop = rule({"type": "segment", "op": "in", "value": second.pk})
    response = preview(console("owner"), loop, segment_id=first.pk)
    assert response.status_code == 422
    assert response.json()["error"]["path"] == "rule"


# --- create and edit -------------------------------------------------------------------------


def test_create_through_the_console(cast, console, people):
    client = console("operator")
    response = client.post(
        "/w/brand/segments/new/",
        {
            "name": " 上海客户 ",
            "description": "华东",
            "realtime": "1",
            "rule": json.dumps(rule(CITY)),
        },
    )
    segment = Segment.objects.get()
    assert response.status_code == 302 and response.url == f"/w/brand/segments/{segment.pk}/"
    assert (segment.name, segment.size, segment.realtime, segment.description) == (
        "上海客户", 2, True, "华东",
    )  # fmt: skip
    assert segment.created_by == cast.operator.staff
    assert AuditLog.objects.filter(action="segment.create").count() == 1
    page = client.get(response.url).content.decode()
    assert "分群已创建：2 位客户。" in page


def test_a_bad_rule_keeps_the_form_with_the_error(cast, console, people):
    bad = rule({**CITY, "value": 3})
    response = console("owner").post(
        "/w/brand/segments/new/", {"name": "坏规则", "rule": json.dumps(bad)}
    )
    assert response.status_code == 422
    assert not Segment.objects.exists()
    html = response.content.decode()
    assert 'value="坏规则"' in html
    assert response.context["config"]["error"]["path"] == "rule.rules[0].value"
    assert "规则：" in html
    taken = make_segment(cast)
    clash = console("owner").post(
        "/w/brand/segments/new/", {"name": taken.name, "rule": json.dumps(rule())}
    )
    assert clash.status_code == 409
    assert Segment.objects.count() == 1
    empty = console("owner").post("/w/brand/segments/new/", {"name": "", "rule": "{"})
    assert empty.status_code == 422


def test_edit_changes_name_rule_and_refreshes(cast, console, people):
    segment = make_segment(cast)
    page = console("admin").get(f"/w/brand/segments/{segment.pk}/edit/")
    assert page.status_code == 200 and json.loads(page.context["form"]["rule"]) == segment.rule
    beijing = rule({**CITY, "value": "北京"})
    response = console("admin").post(
        f"/w/brand/segments/{segment.pk}/edit/",
        {"name": "北京客户", "rule": json.dumps(beijing), "description": ""},
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.size, segment.realtime) == ("北京客户", 1, False)
    bad = console("admin").post(
        f"/w/brand/segments/{segment.pk}/edit/", {"name": "改坏", "rule": json.dumps({"type": "x"})}
    )
    assert bad.status_code == 422
    segment.refresh_from_db()
    assert segment.name == "北京客户"
    assert (
        console("analyst")
        .post(
            f"/w/brand/segments/{segment.pk}/edit/",
            {"name": "分析师改", "rule": json.dumps(beijing)},
        )
        .status_code
        == 403
    )
    segment.refresh_from_db()
    assert segment.name == "北京客户"


def test_static_and_builtin_segments_are_edited_their_own_way(cast, console, people):
    static = actions.segment_create(
        workspace=cast.workspace, actor=SYSTEM, name="名单", kind="static",
        contact_ids=[people["wang"].pk],
    )  # fmt: skip
    page = console("owner").get(f"/w/brand/segments/{static.pk}/edit/")
    assert page.status_code == 200 and page.context["config"] is None
    assert 'id="rule-builder"' not in page.content.decode()
    console("owner").post(f"/w/brand/segments/{static.pk}/edit/", {"name": "新名单"})
    static.refresh_from_db()
    assert static.name == "新名单" and static.rule == {} and static.size == 1
    builtin = actions.builtins_ensure(cast.workspace)[0]
    response = console("owner").get(f"/w/brand/segments/{builtin.pk}/edit/", follow=True)
    assert response.redirect_chain[-1][0] == f"/w/brand/segments/{builtin.pk}/"
    assert "内置分群不能编辑" in response.content.decode()


# --- detail ----------------------------------------------------------------------------------


def test_detail_shows_size_rule_in_words_history_and_members(cast, console, people):
    viewed = {
        "type": "event",
        "event": "Product Viewed",
        "op": "gte",
        "value": 2,
        "window": {"last_days": 7},
    }
    either = {"type": "or", "rules": [CITY, {"type": "not", "rule": {**CITY, "value": "北京"}}]}
    segment = make_segment(cast, the_rule=rule(CITY, viewed))
    page = console("owner").get(f"/w/brand/segments/{segment.pk}/")
    assert page.status_code == 200
    assert page.context["rule_text"] == "城市 等于 上海 且 最近 7 天 Product Viewed ≥ 2 次"
    other = make_segment(cast, "二", rule(either, CITY))
    text = console("owner").get(f"/w/brand/segments/{other.pk}/").context["rule_text"]
    assert text == "（城市 等于 上海 或 不满足（城市 等于 北京）） 且 城市 等于 上海"
    shanghai = make_segment(cast, "三")
    html = console("owner").get(f"/w/brand/segments/{shanghai.pk}/").content.decode()
    assert 'data-kpi="size">2<' in html
    assert "立即刷新" in html and "编辑" in html and "归档" in html
    assert f"/w/brand/contacts/{people['wang'].pk}/" in html
    assert "进入" in html  # the entered history


def test_detail_for_an_agent_lists_only_own_members_and_no_buttons(cast, console, people):
    segment = make_segment(cast)
    page = console("agent").get(f"/w/brand/segments/{segment.pk}/")
    assert page.status_code == 200
    assert [m.contact_id for m in page.context["members"]] == [people["li"].pk]
    assert [c.contact_id for c in page.context["changes"]] == [people["li"].pk]
    html = page.content.decode()
    assert "立即刷新" not in html and "归档此分群" not in html
    assert "只列出你负责的客户" in html


def test_detail_is_scoped_to_the_workspace(cast, console, people):
    segment = make_segment(cast)
    assert console("outsider").get(f"/w/brand/segments/{segment.pk}/").status_code == 404
    other = actions.segment_create(
        workspace=cast.outsider_workspace, actor=SYSTEM, name="别家", rule=rule()
    )
    assert console("owner").get(f"/w/brand/segments/{other.pk}/").status_code == 404


def test_members_and_changes_are_paged_with_htmx(cast, console):
    for i in range(30):
        contact_actions.contact_create(
            workspace=cast.workspace, actor=SYSTEM, profile={"name": f"客户{i:02d}", "city": "上海"}
        )
    segment = make_segment(cast)
    client = console("owner")
    first = client.get(f"/w/brand/segments/{segment.pk}/")
    assert len(first.context["members"]) == 25 and first.context["members_next"]
    nxt = client.get(
        f"/w/brand/segments/{segment.pk}/",
        {"mc": first.context["members_next"]},
        **HTMX,
        HTTP_HX_TARGET="segment-members",
    )
    assert nxt.status_code == 200 and len(nxt.context["members"]) == 5
    assert "<html" not in nxt.content.decode()
    changes = client.get(
        f"/w/brand/segments/{segment.pk}/",
        {"cc": first.context["changes_next"]},
        **HTMX,
        HTTP_HX_TARGET="segment-changes",
    )
    assert len(changes.context["changes"]) == 10
    stale = client.get(f"/w/brand/segments/{segment.pk}/", {"mc": "bogus"})
    assert stale.context["members_stale"] and len(stale.context["members"]) == 25


def test_refresh_now(cast, console, people):
    segment = make_segment(cast)
    contact_actions.contact_update(
        workspace=cast.workspace, actor=SYSTEM, contact=people["chen"], profile={"city": "上海"}
    )
    assert console("analyst").post(f"/w/brand/segments/{segment.pk}/refresh/").status_code == 403
    segment.refresh_from_db()
    assert segment.size == 2
    response = console("operator").post(f"/w/brand/segments/{segment.pk}/refresh/", follow=True)
    segment.refresh_from_db()
    assert segment.size == 3
    assert "已刷新：进入 1 人，离开 0 人，现有 3 人。" in response.content.decode()


def test_archive_needs_confirmation_and_refuses_a_segment_in_use(cast, console, people):
    segment = make_segment(cast)
    user = make_segment(cast, "引用者", rule({"type": "segment", "op": "in", "value": segment.pk}))
    client = console("operator")
    unconfirmed = client.post(f"/w/brand/segments/{segment.pk}/archive/")
    assert unconfirmed.status_code == 422
    used = client.post(f"/w/brand/segments/{segment.pk}/archive/", {"confirm": "1"})
    assert used.status_code == 409
    assert "引用者" in used.content.decode()
    segment.refresh_from_db()
    assert segment.archived_at is None
    assert (
        console("analyst")
        .post(f"/w/brand/segments/{user.pk}/archive/", {"confirm": "1"})
        .status_code
        == 403
    )
    user.refresh_from_db()
    assert user.archived_at is None
    done = client.post(f"/w/brand/segments/{user.pk}/archive/", {"confirm": "1"}, follow=True)
    assert done.redirect_chain[-1][0] == "/w/brand/segments/"
    user.refresh_from_db()
    assert user.archived_at is not None
    assert "引用者" not in [s.name for s in done.context["rows"]]
    assert client.get(f"/w/brand/segments/{user.pk}/").status_code == 404


def test_builtin_detail_has_no_edit_or_archive(cast, console):
    actions.builtins_ensure(cast.workspace)
    builtin = Segment.objects.get(workspace=cast.workspace, builtin_key="stage:new")
    html = console("owner").get(f"/w/brand/segments/{builtin.pk}/").content.decode()
    assert "内置" in html and "立即刷新" in html
    assert "归档此分群" not in html and f"/segments/{builtin.pk}/edit/" not in html
    assert "生命周期阶段 等于 新用户" in html
    assert SegmentChange.objects.count() == 0


def test_rule_in_words_covers_every_condition_type(cast, people):
    from siyu.console.views.segments_text import rule_text

    ws = cast.workspace
    group = contact_actions.tag_group_create(workspace=ws, actor=SYSTEM, name="兴趣")
    coffee = contact_actions.tag_create(workspace=ws, actor=SYSTEM, group=group, name="咖啡")
    tea = contact_actions.tag_create(workspace=ws, actor=SYSTEM, group=group, name="茶")
    contact_actions.attribute_define(
        workspace=ws, actor=SYSTEM, key="vip", label="会员等级", type="number"
    )
    other = make_segment(cast)
    conditions = [
        {"type": "tags", "op": "any", "value": [coffee.pk, tea.pk]},
        {"type": "field", "field": "owner", "op": "in", "value": [cast.operator.staff.pk]},
        {"type": "field", "field": "birthday", "op": "anniversary_within_next_days", "value": 7},
        {
            "type": "field",
            "field": "created_at",
            "op": "between",
            "value": ["2026-01-01", "2026-02-01"],
        },
        {"type": "field", "field": "gender", "op": "eq", "value": "female"},
        {"type": "field", "field": "city", "op": "is_set"},
        {"type": "attribute", "key": "vip", "op": "gte", "value": 3},
        {"type": "identity", "op": "has", "value": "phone"},
        {"type": "consent", "channel": "sms", "op": "is", "value": "granted"},
        {
            "type": "orders",
            "metric": "spend",
            "op": "gte",
            "value": "1000",
            "window": {"last_days": 30},
        },
        {
            "type": "bought",
            "by": "category",
            "op": "none",
            "value": ["护肤"],
            "window": {"from": "2026-01-01", "to": "2026-03-31"},
        },
        {
            "type": "event",
            "event": "Product Viewed",
            "op": "gt",
            "value": 1,
            "window": None,
            "where": [{"property": "price", "kind": "number", "op": "gte", "value": 100}],
        },
        {
            "type": "event_time",
            "event": "Signed Up",
            "which": "first",
            "op": "within_last_days",
            "value": 7,
        },
        {"type": "score", "field": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
        {"type": "segment", "op": "not_in", "value": other.pk},
        {"type": "sample", "value": 10.0, "seed": "x"},
    ]
    parts = rule_text(ws, rule(*conditions)).split(" 且 ")
    assert parts == [
        "标签 含任一 咖啡、茶",
        "负责人 属于 operator",
        "生日 周年日在未来 7 天内",
        "创建时间 介于 2026-01-01 和 2026-02-01 之间",
        "性别 等于 女",
        "城市 有值",
        "会员等级 大于等于 3",
        "有 手机号",
        "短信授权 是 已同意",
        "最近 30 天 消费金额 (扣除退款) 大于等于 1000",
        "2026-01-01 至 2026-03-31 没买过品类 护肤",
        "Product Viewed > 1 次（price 大于等于 100）",
        "首次 Signed Up 在最近 7 天内",
        "RFM 分群 属于 重要价值客户、忠诚客户",
        "不在分群「上海客户」",
        "随机抽样 10%",
    ]
    assert rule_text(ws, rule()) == "所有客户"

"""Campaign pages in the console (营销): broadcasts (list, composer with errors beside their
fields, the guardrail preview partial, the confirm step, send now and a refused second send,
schedule, cancel, a run's report with the uplift against the holdout) and journeys (list,
builder create / edit with a graph error marked on its step, the drawing's edits, activate,
a live edit publishing a new version, the report); per role, and a denied request changes
nothing."""

import datetime
import html
import json
import re

import pytest
from django.utils import timezone

from siyu.campaigns import actions as broadcasts
from siyu.campaigns import journey_actions
from siyu.campaigns.journey_models import Journey, JourneyStepStat
from siyu.campaigns.models import AudienceMember, Broadcast, BroadcastRun, BroadcastStatus
from siyu.console.views import campaigns_journey_edit as edit
from siyu.console.views.campaigns_flow import Lookup
from siyu.contacts.actions.consent import consent_set
from siyu.contacts.models import Contact
from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.messaging import actions as messaging
from siyu.messaging.models import OutboxMessage
from siyu.segments import actions as segments
from siyu.tracking.models import Order

HTMX = {"HTTP_HX_REQUEST": "true"}
SYSTEM = Actor.system("test")
B = "/w/brand/campaigns/broadcasts/"
J = "/w/brand/campaigns/journeys/"


@pytest.fixture
def kit(cast, make_contact):
    """An SMS channel (planning makes no vendor call), a template, ten reachable members in a
    static segment, and a disabled second channel."""
    ws = cast.workspace
    members = [make_contact(name=f"会员{i}", phone=f"1380013{i:04d}") for i in range(10)]
    for person in members:
        consent_set(workspace=ws, actor=SYSTEM, contact=person, channel="sms", status="granted")
    segment = segments.segment_create(
        workspace=ws, actor=SYSTEM, name="会员", kind="static", contact_ids=[p.pk for p in members]
    )
    values = {
        "kind": "sms_aliyun",
        "settings": {"sign_name": "x"},
        "secrets": {"access_key_id": "k", "access_key_secret": "s"},
    }
    channel = messaging.channel_create(workspace=ws, actor=SYSTEM, name="短信", **values)
    idle = messaging.channel_create(
        workspace=ws, actor=SYSTEM, name="备用短信", enabled=False, **values
    )
    template = messaging.template_create(
        workspace=ws,
        actor=SYSTEM,
        kind="sms_aliyun",
        name="会员日",
        content={"template_code": "SMS_1", "text": "会员日快乐", "params": {}},
    )
    return {
        "segment": segment,
        "channel": channel,
        "idle": idle,
        "template": template,
        "members": members,
    }


def _draft_form(kit, **extra):
    form = {
        "name": "会员日",
        "channel_id": kit["channel"].pk,
        "template_id": kit["template"].pk,
        "include_segments": [kit["segment"].pk],
        "holdout_percent": "20",
        "goal_event": "Order Completed",
        "attribution_days": "3",
    }
    form.update(extra)
    return form


def _draft(kit, **extra) -> Broadcast:
    values = {
        "name": "会员日",
        "channel_id": kit["channel"].pk,
        "template_id": kit["template"].pk,
        "include_segments": [kit["segment"].pk],
        "holdout_percent": 20,
    }
    values.update(extra)
    return broadcasts.broadcast_create(workspace=kit["segment"].workspace, actor=SYSTEM, **values)


def _rows() -> dict:
    """Every campaign row, the outbox and the audit log: a denied request leaves them."""
    models = (Broadcast, BroadcastRun, AudienceMember, Journey, OutboxMessage, AuditLog)
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in models}


def _text(response) -> str:
    return response.content.decode()


# --- broadcasts -----------------------------------------------------------------------------


def test_pages_render_in_chinese_with_empty_states(console, kit):
    owner = console("owner")
    listing = owner.get(B)
    assert listing.status_code == 200
    body = _text(listing)
    assert "还没有群发" in body and "新建群发" in body
    assert ">群发<" in body and ">旅程<" in body  # the navigation
    journeys = _text(owner.get(J))
    assert "还没有旅程" in journeys and "新建旅程" in journeys
    composer = _text(owner.get(B + "new/"))
    assert "保存草稿" in composer and "对照组" in composer
    # only an enabled channel is sendable: the other is marked
    assert "备用短信（阿里云短信） · 未启用" in composer
    assert "会员（10 人）" in composer
    builder = owner.get(J + "new/")
    assert builder.status_code == 200
    assert "新建旅程" in _text(builder) and 'data-step="send1"' in _text(builder)


def test_compose_preview_send_now_and_a_second_send_is_refused(console, kit):
    owner = console("owner")
    created = owner.post(B + "new/", _draft_form(kit))
    assert created.status_code == 302, _text(created)
    broadcast = Broadcast.objects.get()
    assert created["Location"] == f"{B}{broadcast.pk}/"
    assert broadcast.holdout_percent == 20 and broadcast.include_segments == [kit["segment"].pk]
    page = _text(owner.get(created["Location"]))
    assert "发送前检查" in page and f"{B}{broadcast.pk}/preview/" in page

    preview = owner.get(f"{B}{broadcast.pk}/preview/", **HTMX)
    body = _text(preview)
    to_send = int(re.search(r'data-to-send="(\d+)"', body).group(1))
    holdout = int(re.search(r'data-funnel-step="holdout" data-n="(\d+)"', body).group(1))
    assert to_send + holdout == 10 and holdout > 0
    for word in ("入选", "排除后", "对照组", "未授权", "无联系方式", "超出频次", "将发送"):
        assert word in body

    confirm = owner.post(f"{B}{broadcast.pk}/send/", {"when": "now"})
    assert confirm.status_code == 200
    assert f'data-final-count="{to_send}"' in _text(confirm) and "确认并发送" in _text(confirm)
    assert not OutboxMessage.objects.exists()  # the confirm step sends nothing

    sent = owner.post(f"{B}{broadcast.pk}/send/", {"when": "now", "confirm": "1"})
    assert sent.status_code == 302
    assert OutboxMessage.objects.filter(source=f"broadcast:{broadcast.pk}:1").count() == to_send
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING
    detail = _text(owner.get(sent["Location"]))
    assert f"已开始发送：{to_send} 条消息已排队" in detail and 'data-run-report="1"' in detail

    again = owner.post(f"{B}{broadcast.pk}/send/", {"when": "now", "confirm": "1"})
    assert again.status_code == 409
    assert "已发送或已排期" in _text(again)
    assert OutboxMessage.objects.count() == to_send and BroadcastRun.objects.count() == 1


def test_composer_errors_sit_beside_their_fields(console, kit):
    owner = console("owner")
    bad = owner.post(B + "new/", _draft_form(kit, holdout_percent="80"))
    assert bad.status_code == 422
    field = re.search(
        r'data-field="holdout_percent">.*?field-error[^>]*>([^<]*)<', _text(bad), re.S
    )
    assert field and "0 到 50" in field.group(1)
    assert not Broadcast.objects.exists()

    broadcast = _draft(kit)
    saved = owner.post(
        f"{B}{broadcast.pk}/save/",
        _draft_form(kit, name="周年庆"),
        **HTMX,
        HTTP_HX_TARGET="composer",
    )
    assert saved.status_code == 200 and saved["HX-Trigger"] == "broadcast-saved"
    assert "已保存" in _text(saved)
    broadcast.refresh_from_db()
    assert broadcast.name == "周年庆"
    clash = _draft_form(kit, exclude_segments=[kit["segment"].pk])
    refused = owner.post(f"{B}{broadcast.pk}/save/", clash, **HTMX, HTTP_HX_TARGET="composer")
    assert refused.status_code == 422 and "HX-Trigger" not in refused
    assert re.search(r'data-field="exclude_segments">.*?同时被选为', _text(refused), re.S)


def test_a_disabled_channel_cannot_send(console, kit):
    owner = console("owner")
    broadcast = _draft(kit, channel_id=kit["idle"].pk)
    page = _text(owner.get(f"{B}{broadcast.pk}/"))
    assert "渠道 备用短信 未启用：启用后才能发送" in page
    refused = owner.post(f"{B}{broadcast.pk}/send/", {"when": "now", "confirm": "1"})
    assert refused.status_code == 422 and "渠道未启用" in _text(refused)
    assert not OutboxMessage.objects.exists()
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.DRAFT


def test_template_picker_offers_the_channel_kinds_templates(console, kit):
    picker = console("owner").get(
        B + "templates/", {"channel_id": kit["channel"].pk}, **HTMX, HTTP_HX_TARGET="template-field"
    )
    assert picker.status_code == 200 and "会员日" in _text(picker)
    empty = console("owner").get(B + "templates/", {"channel_id": ""}, **HTMX)
    assert "请先选择渠道" in _text(empty)


def test_schedule_weekly_and_cancel(console, kit):
    owner = console("owner")
    broadcast = _draft(kit)
    when = (timezone.now() + datetime.timedelta(days=2)).astimezone(
        datetime.timezone(datetime.timedelta(hours=8))
    )
    form = {
        "when": "later",
        "send_at": when.strftime("%Y-%m-%dT%H:%M"),
        "recurrence": "weekly",
        "weekdays": ["1", "3"],
    }
    confirm = owner.post(f"{B}{broadcast.pk}/send/", form)
    assert confirm.status_code == 200 and "每周 周一、周三" in _text(confirm)
    done = owner.post(f"{B}{broadcast.pk}/send/", {**form, "confirm": "1"})
    assert done.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SCHEDULED and broadcast.weekdays == [1, 3]
    assert broadcast.next_run_at is not None and not OutboxMessage.objects.exists()
    page = _text(owner.get(done["Location"]))
    assert "已排期" in page and "取消群发" in page

    missing = _draft(kit, name="无时间")
    refused = owner.post(f"{B}{missing.pk}/send/", {"when": "later", "send_at": "", "confirm": "1"})
    assert refused.status_code == 422
    assert re.search(r'data-field="send_at">.*?field-error[^>]*>必填<', _text(refused), re.S)

    cancelled = owner.post(f"{B}{broadcast.pk}/cancel/")
    assert cancelled.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.CANCELLED
    assert owner.post(f"{B}{broadcast.pk}/cancel/").status_code == 409


def test_run_report_shows_the_uplift_against_the_holdout(console, cast, kit):
    ws = cast.workspace
    crowd = Contact.objects.bulk_create(
        [Contact(workspace=ws, name=f"客户{i}") for i in range(300)]
    )
    everyone = segments.segment_create(
        workspace=ws,
        actor=SYSTEM,
        name="全部",
        kind="static",
        contact_ids=[c.pk for c in crowd] + [m.pk for m in kit["members"]],
    )
    broadcast = _draft(kit, name="复购", include_segments=[everyone.pk], holdout_percent=50)
    broadcasts.broadcast_send(workspace=ws, actor=SYSTEM, broadcast=broadcast)
    run = broadcast.runs.get()
    members = list(AudienceMember.objects.filter(run=run).order_by("contact_id"))
    targeted = [m.contact_id for m in members if m.group != "holdout"]
    holdout = [m.contact_id for m in members if m.group == "holdout"]
    buyers = targeted[: len(targeted) // 2] + holdout[:3]
    placed = run.planned_at + datetime.timedelta(hours=2)
    Order.objects.bulk_create(
        [
            Order(
                workspace=ws,
                contact_id=cid,
                external_id=f"o{n}",
                status="completed",
                total_fen=10_000,
                placed_at=placed,
            )
            for n, cid in enumerate(buyers)
        ]
    )
    partial = console("analyst").get(
        f"{B}{broadcast.pk}/runs/1/", **HTMX, HTTP_HX_TARGET="run-report"
    )
    assert partial.status_code == 200
    body = _text(partial)
    assert 'data-verdict="lift"' in body and "显著提升" in body
    assert "个百分点" in body and "95% 区间" in body
    per_member = re.search(r'data-group="targeted">.*?data-per-member>([^<]+)<', body, re.S)
    spent = len(targeted) // 2 * 100  # half of them spent 100 元 each
    assert per_member.group(1).strip() == f"{spent / len(targeted):.2f}"
    assert "目标组" in body and "对照组" in body and "排队中" in body
    # a browser asking for the partial gets the page with that run
    page = console("analyst").get(f"{B}{broadcast.pk}/runs/1/")
    assert page.status_code == 302 and page["Location"].endswith("?run=1")
    full = _text(console("analyst").get(page["Location"]))
    assert 'id="chart-run"' in full and "vendor/echarts/echarts.min.js" in full


def test_too_few_members_say_so(console, kit):
    broadcast = _draft(kit)
    broadcasts.broadcast_send(workspace=kit["segment"].workspace, actor=SYSTEM, broadcast=broadcast)
    body = _text(
        console("owner").get(f"{B}{broadcast.pk}/runs/1/", **HTMX, HTTP_HX_TARGET="run-report")
    )
    assert "样本过少" in body


# --- journeys -------------------------------------------------------------------------------


def _graph(kit, **wait):
    return {
        "trigger": {"type": "segment_entered", "segment_id": kit["segment"].pk},
        "start": "send1",
        "steps": {
            "send1": {
                "type": "send",
                "channel_id": kit["channel"].pk,
                "template_id": kit["template"].pk,
                "next": "wait1",
            },
            "wait1": {"type": "wait", "duration": wait or {"days": 3}, "next": None},
        },
    }


def _journey_form(graph, **extra):
    form = {
        "name": "欢迎旅程",
        "graph": json.dumps(graph, ensure_ascii=False),
        "panel": "",
        "reentry": "once",
        "goal_event": "Order Completed",
        "attribution_days": "7",
        "holdout_percent": "10",
    }
    form.update(extra)
    return form


def _hidden_graph(response) -> dict:
    raw = re.search(r'name="graph" value="([^"]*)"', _text(response)).group(1)
    return json.loads(html.unescape(raw))


def test_journey_builder_create_error_on_the_step_edit_and_activate(console, kit):
    owner = console("owner")
    created = owner.post(J + "new/", _journey_form(_graph(kit)))
    assert created.status_code == 302, _text(created)
    journey = Journey.objects.get()
    assert journey.name == "欢迎旅程" and journey.versions.count() == 1
    assert journey.holdout_percent == 10 and journey.reentry_days is None

    bad = owner.post(f"{J}{journey.pk}/", _journey_form(_graph(kit, days=400)))
    assert bad.status_code == 422
    box = re.search(
        r'<div class="flow-box step-wait[^"]*invalid[^"]*" data-step="wait1".*?</div>\s*</button>',
        _text(bad),
        re.S,
    )
    assert box and "366" in box.group(0) and "<code>duration.days</code>" in box.group(0)
    assert 'data-panel-error="duration.days"' in _text(bad)  # the panel opens on that step
    assert journey.versions.count() == 1

    activated = owner.post(f"{J}{journey.pk}/status/", {"status": "active"})
    assert activated.status_code == 302
    journey.refresh_from_db()
    assert journey.status == "active" and journey.live_version.number == 1
    page = _text(owner.get(f"{J}{journey.pk}/"))
    assert "发布新版本" in page and "暂停" in page

    edited = owner.post(f"{J}{journey.pk}/", _journey_form(_graph(kit, days=5)), follow=True)
    assert "已发布第 2 版" in _text(edited)
    journey.refresh_from_db()
    assert journey.live_version.number == 2
    assert journey.live_version.graph["steps"]["wait1"]["duration"] == {"days": 5}
    # settings only: no new version
    owner.post(f"{J}{journey.pk}/", _journey_form(_graph(kit, days=5), name="欢迎"))
    journey.refresh_from_db()
    assert journey.name == "欢迎" and journey.versions.count() == 2

    paused = owner.post(f"{J}{journey.pk}/status/", {"status": "paused"}, follow=True)
    assert "旅程已暂停" in _text(paused) and "恢复" in _text(paused)
    archived = owner.post(f"{J}{journey.pk}/status/", {"status": "archived"}, follow=True)
    assert "旅程已归档" in _text(archived) and 'id="journey-save"' not in _text(archived)
    journey.refresh_from_db()
    assert journey.status == "archived"


def test_the_drawing_adds_selects_and_deletes_steps(console, kit):
    owner = console("owner")
    url = J + "flow/"
    graph = _graph(kit)
    added = owner.post(
        url,
        {
            "graph": json.dumps(graph),
            "panel": "",
            "editable": "1",
            "op": "add",
            "after": "send1",
            "slot": "next",
            "type": "wait",
        },
        **HTMX,
    )
    assert added.status_code == 200
    after_add = _hidden_graph(added)
    assert after_add["steps"]["send1"]["next"] == "wait2"
    assert after_add["steps"]["wait2"] == {"type": "wait", "duration": {"days": 1}, "next": "wait1"}
    assert 'data-step="wait2"' in _text(added) and 'value="wait2"' in _text(added)  # panel open

    # the panel's fields are applied before the next edit
    applied = owner.post(
        url,
        {
            "graph": json.dumps(after_add),
            "panel": "wait2",
            "editable": "1",
            "op": "apply",
            "p.kind": "wait",
            "p.mode": "duration",
            "p.days": "",
            "p.hours": "6",
        },
        **HTMX,
    )
    assert _hidden_graph(applied)["steps"]["wait2"]["duration"] == {"hours": 6}
    assert "6 小时" in _text(applied)

    deleted = owner.post(
        url,
        {
            "graph": json.dumps(after_add),
            "panel": "",
            "editable": "1",
            "op": "delete",
            "step": "wait2",
        },
        **HTMX,
    )
    assert _hidden_graph(deleted)["steps"]["send1"]["next"] == "wait1"

    # a branch inserted mid-path keeps what followed on "yes"; deleting it keeps that path
    branched, _ = edit.add_step(graph, "send1", "next", "branch", Lookup(kit["segment"].workspace))
    assert branched["steps"]["branch1"]["yes"] == "wait1"
    assert edit.delete_step(branched, "branch1")["steps"]["send1"]["next"] == "wait1"

    # a viewer may look, not change
    looked = console("analyst").post(
        url,
        {
            "graph": json.dumps(graph),
            "panel": "",
            "editable": "1",
            "op": "add",
            "after": "send1",
            "slot": "next",
            "type": "wait",
        },
        **HTMX,
    )
    assert looked.status_code == 200 and _hidden_graph(looked) == graph


def test_journey_list_and_report(console, cast, kit):
    journey = journey_actions.journey_create(
        workspace=cast.workspace,
        actor=SYSTEM,
        name="召回",
        graph=_graph(kit),
        goal_event="Order Completed",
        holdout_percent=10,
    )
    journey = journey_actions.journey_set_status(
        workspace=cast.workspace, actor=SYSTEM, journey=journey, status="active"
    )
    JourneyStepStat.objects.create(
        workspace=cast.workspace, version=journey.live_version, step="send1", entered=42
    )
    listing = _text(console("analyst").get(J))
    assert "召回" in listing and "进入分群「会员」" in listing and "v1" in listing
    report = console("analyst").get(f"{J}{journey.pk}/report/")
    assert report.status_code == 200
    body = _text(report)
    assert 'data-entered="42"' in body and "样本过少" in body and "已走完" in body


# --- roles ----------------------------------------------------------------------------------


def test_analyst_views_but_cannot_change(console, cast, kit):
    broadcast = _draft(kit)
    journey = journey_actions.journey_create(
        workspace=cast.workspace, actor=SYSTEM, name="召回", graph=_graph(kit)
    )
    analyst = console("analyst")
    for url in (B, f"{B}{broadcast.pk}/", J, f"{J}{journey.pk}/", f"{J}{journey.pk}/report/"):
        assert analyst.get(url).status_code == 200, url
    page = _text(analyst.get(f"{B}{broadcast.pk}/"))
    assert 'id="composer"' not in page and "下一步：确认人数" not in page
    builder = _text(analyst.get(f"{J}{journey.pk}/"))
    assert 'id="journey-save"' not in builder and 'class="flow-delete"' not in builder
    before = _rows()
    assert analyst.get(B + "new/").status_code == 403
    assert analyst.post(B + "new/", _draft_form(kit)).status_code == 403
    assert analyst.post(f"{B}{broadcast.pk}/save/", _draft_form(kit)).status_code == 403
    assert (
        analyst.post(f"{B}{broadcast.pk}/send/", {"when": "now", "confirm": "1"}).status_code == 403
    )
    assert analyst.post(f"{B}{broadcast.pk}/cancel/").status_code == 403
    assert analyst.post(J + "new/", _journey_form(_graph(kit))).status_code == 403
    assert analyst.post(f"{J}{journey.pk}/", _journey_form(_graph(kit, days=9))).status_code == 403
    assert analyst.post(f"{J}{journey.pk}/status/", {"status": "active"}).status_code == 403
    assert _rows() == before


def test_agent_denied_and_outsider_sees_nothing(console, cast, kit):
    broadcast = _draft(kit)
    journey = journey_actions.journey_create(
        workspace=cast.workspace, actor=SYSTEM, name="召回", graph=_graph(kit)
    )
    agent = console("agent")
    assert agent.get(B).status_code == 403 and agent.get(J).status_code == 403
    assert ">群发<" not in _text(agent.get("/w/brand/contacts/"))
    before = _rows()
    outsider = console("outsider")
    for url in (B, f"{B}{broadcast.pk}/", f"{B}{broadcast.pk}/preview/", f"{J}{journey.pk}/"):
        assert outsider.get(url).status_code == 404, url
    assert (
        outsider.post(f"{B}{broadcast.pk}/send/", {"when": "now", "confirm": "1"}).status_code
        == 404
    )
    assert outsider.post(f"{B}{broadcast.pk}/cancel/").status_code == 404
    assert outsider.post(f"{J}{journey.pk}/status/", {"status": "archived"}).status_code == 404
    assert (
        agent.post(f"{B}{broadcast.pk}/send/", {"when": "now", "confirm": "1"}).status_code == 403
    )
    # the other workspace's owner reaching for this one's broadcast through their own slug
    theirs = outsider.get(f"/w/other/campaigns/broadcasts/{broadcast.pk}/")
    assert theirs.status_code == 404
    assert _rows() == before

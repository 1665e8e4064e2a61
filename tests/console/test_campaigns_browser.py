"""The journey builder in headless Chromium: open a new journey (a message to members who
enter a segment), add a wait step after the first step with the ＋ between the boxes, set it
to two days in the side panel, save, and see the drawn flow carry it.

Set SIYU_CAMPAIGN_SCREENSHOTS=<folder> to save a screenshot of the builder."""

import os
import re
from pathlib import Path

import pytest
from django.db import connection

from siyu.campaigns.journey_models import Journey
from siyu.core.audit import Actor
from siyu.messaging import actions as messaging
from siyu.segments import actions as segments
from tests.console.browser import MARKS, log_in

pytestmark = MARKS
SYSTEM = Actor.system("test")


@pytest.fixture
def kit(cast):
    ws = cast.workspace
    segments.segment_create(workspace=ws, actor=SYSTEM, name="新会员", kind="static")
    messaging.channel_create(
        workspace=ws,
        actor=SYSTEM,
        kind="sms_aliyun",
        name="短信",
        settings={"sign_name": "x"},
        secrets={"access_key_id": "k", "access_key_secret": "s"},
    )
    messaging.template_create(
        workspace=ws,
        actor=SYSTEM,
        kind="sms_aliyun",
        name="欢迎",
        content={"template_code": "SMS_1", "text": "欢迎加入", "params": {}},
    )


def test_add_a_wait_step_and_save(transactional_db, live_server, cast, kit, page):
    from playwright.sync_api import expect

    log_in(page, live_server, cast.operator.staff)
    page.get_by_role("link", name="旅程", exact=True).click()
    page.wait_for_url("**/w/brand/campaigns/journeys/")
    page.get_by_role("link", name="＋ 新建旅程").click()
    page.wait_for_url("**/journeys/new/")

    flow = page.locator("[data-flow]")
    expect(flow.locator(".flow-box.trigger")).to_contain_text("进入分群「新会员」")
    expect(flow.locator("[data-step=send1]")).to_contain_text("短信 · 欢迎")
    page.fill("input[name=name]", "新会员欢迎")

    # the ＋ right after the first step, then 等待
    add = flow.locator("details.flow-add[data-add-after=send1][data-slot=next]")
    add.locator("summary").click()
    add.locator("[data-add-type=wait]").click()
    wait_box = flow.locator("[data-step=wait1]")
    expect(wait_box).to_contain_text("1 天")
    expect(wait_box).to_have_class(re.compile(r"\bselected\b"))  # its panel is open
    panel = page.locator("#journey-panel")
    expect(panel).to_contain_text("等待")
    panel.locator("input[name='p.days']").fill("2")
    panel.locator("[data-apply]").click()
    expect(wait_box).to_contain_text("2 天")
    if shots := os.environ.get("SIYU_CAMPAIGN_SCREENSHOTS"):
        page.screenshot(path=str(Path(shots) / "journey_builder.png"), full_page=True)

    page.locator("#journey-save").click()
    page.wait_for_url("**/campaigns/journeys/*/")
    expect(page.locator(".flash")).to_contain_text("旅程已创建为草稿")
    saved = page.locator("[data-flow]")
    # drawn in order: trigger, the message, then the wait
    expect(saved.locator(".flow-box")).to_have_count(3)
    expect(saved.locator(".flow-box").nth(2)).to_have_attribute("data-step", "wait1")
    expect(saved.locator("[data-step=wait1]")).to_contain_text("2 天")
    graph = Journey.objects.get().versions.get().graph
    assert graph["steps"]["send1"]["next"] == "wait1"
    assert graph["steps"]["wait1"] == {"type": "wait", "duration": {"days": 2}, "next": None}
    connection.close()

"""The segment builder in headless Chromium: pick 城市 等于 上海 from the drop-downs and watch
the live count, see a bad condition's error beside it, add a nested 满足任一 group, save and
land on the segment's page with its size.

Set SIYU_SEGMENT_SCREENSHOTS=<folder> to save a screenshot of the builder and the result."""

import os
from pathlib import Path

import pytest
from django.db import connection

from siyu.contacts import actions as contact_actions
from siyu.core.audit import Actor
from siyu.segments.models import Segment
from tests.console.browser import MARKS, log_in

pytestmark = MARKS


@pytest.fixture
def people(cast):
    for name, city in [("王芳", "上海"), ("李娜", "上海"), ("张伟", "北京"), ("王强", "北京")]:
        contact_actions.contact_create(
            workspace=cast.workspace,
            actor=Actor.system("test"),
            profile={"name": name, "city": city},
        )


def test_build_a_segment_with_the_live_count(transactional_db, live_server, cast, people, page):
    from playwright.sync_api import expect

    shots = os.environ.get("SIYU_SEGMENT_SCREENSHOTS")
    log_in(page, live_server, cast.operator.staff)
    page.get_by_role("link", name="分群", exact=True).click()
    page.wait_for_url("**/w/brand/segments/")
    page.get_by_role("link", name="新建分群").first.click()
    page.wait_for_url("**/w/brand/segments/new/")

    count = page.locator("#preview-count")
    expect(count).to_have_attribute("data-count", "4")  # no condition yet: everyone
    builder = page.locator("#rule-builder")
    root = builder.locator(".rb-group").first

    # 城市 等于 上海, from the drop-downs
    root.get_by_role("button", name="＋ 添加条件", exact=True).click()
    first = builder.locator(".rb-cond").first
    first.locator("select.rb-field").select_option(label="城市")
    expect(first.locator("select.rb-op")).to_have_value("eq")
    first.locator("input.rb-value").fill("上海")
    expect(count).to_have_attribute("data-count", "2")
    expect(page.locator("#preview-text")).to_have_text("城市 等于 上海")

    # an event condition without an event name: the error shows beside that condition
    root.get_by_role("button", name="＋ 添加条件", exact=True).click()
    second = builder.locator(".rb-cond").nth(1)
    second.locator("select.rb-type").select_option(label="行为次数")
    expect(second.locator(".rb-error")).to_have_text("应为事件名称")
    expect(count).to_have_attribute("data-count", "")
    second.get_by_role("button", name="移除").click()
    expect(count).to_have_attribute("data-count", "2")

    # a nested group: 满足任一 of 姓名 开头是 王 / 姓名 开头是 李
    root.get_by_role("button", name="＋ 添加条件组", exact=True).click()
    nested = root.locator(".rb-group")
    nested.locator("select.rb-mode").select_option(label="满足任一")
    wang = nested.locator(".rb-cond").first
    expect(wang.locator("select.rb-field")).to_have_value("name")
    wang.locator("select.rb-op").select_option(label="开头是")
    wang.locator("input.rb-value").fill("王")
    expect(count).to_have_attribute("data-count", "1")
    nested.get_by_role("button", name="＋ 添加条件", exact=True).click()
    li = nested.locator(".rb-cond").nth(1)
    li.locator("select.rb-op").select_option(label="开头是")
    li.locator("input.rb-value").fill("李")
    expect(count).to_have_attribute("data-count", "2")
    expect(page.locator("#preview-text")).to_have_text(
        "城市 等于 上海 且 （姓名 开头是 王 或 姓名 开头是 李）"
    )
    expect(page.locator("#preview-sample")).to_contain_text("王芳")
    if shots:
        page.screenshot(path=str(Path(shots) / "builder.png"), full_page=True)

    page.fill("input[name=name]", "上海王李")
    page.get_by_role("button", name="创建分群").click()
    page.wait_for_url("**/w/brand/segments/*/")
    expect(page.locator("[data-kpi=size]")).to_have_text("2")
    expect(page.locator("[data-rule-text]")).to_contain_text("姓名 开头是 王 或 姓名 开头是 李")
    expect(page.locator("#segment-members")).to_contain_text("李娜")
    if shots:
        page.screenshot(path=str(Path(shots) / "detail.png"), full_page=True)
    segment = Segment.objects.get(name="上海王李")
    assert segment.size == 2
    assert segment.rule["rules"][1]["type"] == "or"
    connection.close()

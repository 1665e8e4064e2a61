"""The template editor in headless Chromium: pick 阿里云短信, type the approved text and see the
live preview name the missing parameter beside its field; add the parameter row and watch the
preview fill it in for the sample contact with the SMS length; preview for a contact found by
name; save and land on the template's page.

Set SIYU_MESSAGING_SCREENSHOTS=<folder> to save a screenshot of the editor."""

import os
from pathlib import Path

from django.db import connection

from siyu.contacts import actions as contact_actions
from siyu.core.audit import Actor
from siyu.messaging.models import MessageTemplate
from tests.console.browser import MARKS, log_in

pytestmark = MARKS


def test_write_an_sms_template_with_the_live_preview(transactional_db, live_server, cast, page):
    from playwright.sync_api import expect

    contact_actions.contact_create(
        workspace=cast.workspace, actor=Actor.system("test"), profile={"name": "李娜"}
    )
    shots = os.environ.get("SIYU_MESSAGING_SCREENSHOTS")
    log_in(page, live_server, cast.operator.staff)
    page.get_by_role("link", name="消息模板", exact=True).click()
    page.wait_for_url("**/w/brand/messaging/templates/")
    page.get_by_role("link", name="＋ 新建模板").click()
    page.locator("[data-kind=sms_aliyun]").click()
    page.wait_for_url("**/templates/new/?kind=sms_aliyun")

    preview = page.locator("#template-preview")
    params_error = page.locator("#err-f-content-params")
    page.fill("input[name=name]", "积分到期")
    page.fill("input[name='content.template_code']", "SMS_71390007")
    page.fill("textarea[name='content.text']", "亲爱的${name}，您的积分即将到期，回TD退订")
    # no parameter yet: the preview names the missing one beside the parameters
    expect(params_error).to_contain_text("${name}")

    page.get_by_role("button", name="＋ 添加参数").click()
    row = page.locator("[data-rows='content.params'] .param-row").first
    row.locator("input[name='content.params.key']").fill("name")
    row.locator("input[name='content.params.value']").fill("{{ contact.name }}")
    expect(preview.locator("[data-preview=sms]")).to_have_text(
        "亲爱的王小明，您的积分即将到期，回TD退订"
    )
    expect(params_error).to_be_empty()
    expect(preview.locator(".sms-meter")).to_have_attribute("data-sms-segments", "1")
    expect(preview).to_contain_text("按 1 条短信计费")

    # a syntax error shows beside the field, the preview says to fix it
    row.locator("input[name='content.params.value']").fill("{{ contact.name")
    expect(params_error).to_contain_text("第 1 行")
    row.locator("input[name='content.params.value']").fill("{{ contact.name }}")
    expect(params_error).to_be_empty()

    # preview for a contact found by name
    page.fill("#contact-q", "李")
    expect(page.locator("#preview-contact")).to_contain_text("李娜")
    expect(preview.locator("[data-preview=sms]")).to_contain_text("亲爱的李娜")
    if shots:
        page.screenshot(path=str(Path(shots) / "template_editor.png"), full_page=True)

    page.get_by_role("button", name="创建模板").click()
    page.wait_for_url("**/w/brand/messaging/templates/*/")
    expect(page.locator(".flash")).to_contain_text("已保存模板 积分到期")
    template = MessageTemplate.objects.get()
    assert template.content["params"] == {"name": "{{ contact.name }}"}
    assert template.content["template_code"] == "SMS_71390007"
    connection.close()

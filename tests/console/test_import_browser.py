"""The import wizard in headless Chromium: upload a GBK file, fix a column in the drop-down
(the preview follows without a reload), start, and read the result.

Set SIYU_IMPORT_SCREENSHOTS=<folder> to save a screenshot of each step there."""

import os
from pathlib import Path

from django.db import connection

from siyu.contacts.models import Contact
from tests.console.browser import MARKS, log_in
from tests.contacts.importing import csv_bytes, fresh_imports  # noqa: F401 - autouse fixture

pytestmark = MARKS
ROWS = [
    ["客户姓名", "联系方式", "备注", "城市", "标签"],
    ["王小明", "13812345678", "老客", "上海", "VIP、咖啡"],
    ["李雷", "12345", "", "北京", ""],
    ["韩梅梅", "13700002222", "", "广州", "VIP"],
]


def test_import_wizard_in_a_browser(transactional_db, live_server, cast, page, tmp_path):
    from playwright.sync_api import expect

    shots = os.environ.get("SIYU_IMPORT_SCREENSHOTS")

    def shot(name):
        if shots:
            page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)

    log_in(page, live_server, cast.operator.staff)
    page.get_by_role("link", name="导入", exact=True).click()
    page.wait_for_url("**/w/brand/imports/")
    page.get_by_role("link", name="新建导入").first.click()
    file = tmp_path / "客户名单.csv"
    file.write_bytes(csv_bytes(ROWS, "gbk"))
    page.set_input_files("input[name=file]", str(file))
    shot("1-upload")
    page.get_by_role("button", name="上传并继续").click()
    page.wait_for_url("**/imports/new/*/")
    expect(page.locator("#import-preview")).to_contain_text("不是有效的手机号：12345")
    page.evaluate("window.__sameDocument = true")
    # 备注 was not recognised; import it as the city instead of 城市 and watch the preview
    page.select_option("select[name=col-3]", "")
    page.select_option("select[name=col-2]", "city")
    expect(page.locator("#import-preview thead")).to_contain_text("备注")
    assert page.evaluate("window.__sameDocument") is True
    shot("2-mapping")
    page.get_by_role("button", name="开始导入").click()
    page.wait_for_url("**/w/brand/imports/*/")
    expect(page.locator(".import-counts")).to_contain_text("2 新建")
    expect(page.locator(".import-counts")).to_contain_text("1 行失败")
    expect(page.get_by_role("link", name="下载错误报告")).to_be_visible()
    shot("3-result")
    assert set(Contact.objects.values_list("city", flat=True)) == {"老客", ""}
    page.goto(f"{live_server.url}/w/brand/imports/")
    shot("4-list")
    connection.close()

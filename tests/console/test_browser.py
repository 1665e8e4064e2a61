"""End to end in headless Chromium: log in through the form, find a contact by phone, open
it, add a tag inline and see the tag and the new timeline row without a page reload.

Set SIYU_SCREENSHOT=1 to also save docs/screenshot-contacts.png (for the README)."""

import os
from pathlib import Path

import pytest
from django.db import connection

from siyu.contacts import actions as contact_actions
from siyu.contacts.models import ContactTag
from siyu.core.audit import Actor
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-contacts.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def page(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe, so tell Django not to refuse them (this test only).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        context.set_default_timeout(10_000)
        yield context.new_page()
        browser.close()


@pytest.fixture
def pool(cast, make_contact):
    """A few contacts and a VIP tag; 王小明 is the one the test looks for."""
    system = Actor.system("test")
    group = contact_actions.tag_group_create(
        workspace=cast.workspace, actor=system, name="会员等级"
    )
    vip = contact_actions.tag_create(
        workspace=cast.workspace, actor=system, group=group, name="VIP"
    )
    normal = contact_actions.tag_create(
        workspace=cast.workspace, actor=system, group=group, name="普通"
    )
    others = [
        make_contact(name, phone=phone, source=source, owner=cast.agent)
        for name, phone, source in [
            ("李雷", "13900001111", "douyin"),
            ("韩梅梅", "13700002222", "xiaohongshu"),
            ("陈静", "13600003333", "mini_program"),
        ]
    ]
    contact_actions.contacts_tag(
        workspace=cast.workspace, actor=system, contact_ids=[c.pk for c in others], add=[normal.pk]
    )
    wang = make_contact("王小明", phone="13812345678", source="store_qr")
    return {"wang": wang, "vip": vip}


def test_search_open_and_tag_inline(transactional_db, live_server, cast, pool, page):
    from playwright.sync_api import expect

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", cast.owner.staff.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name="客户", exact=True).click()
    page.wait_for_url("**/w/brand/contacts/")
    expect(page.locator("#contact-results tbody tr")).to_have_count(4)
    expect(page.locator("#contact-count")).to_contain_text("4")
    if os.environ.get("SIYU_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOT))

    page.fill("input[name=q]", "138 1234 5678")
    page.press("input[name=q]", "Enter")
    expect(page.locator("#contact-results tbody tr")).to_have_count(1)
    expect(page.locator("#contact-results")).to_contain_text("138****5678")
    # a searched phone never reaches the address bar (history, proxies' logs)
    assert "138" not in page.url

    page.get_by_role("link", name="王小明").click()
    page.wait_for_url(f"**/contacts/{pool['wang'].pk}/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.select_option("#contact-tags select[name=add]", label="VIP")
    page.locator("#contact-tags").get_by_role("button", name="添加标签").click()

    expect(page.locator("#contact-tags .tag")).to_contain_text("VIP")
    expect(page.locator("#timeline li").first).to_contain_text("添加标签：VIP")
    assert page.evaluate("window.__sameDocument") is True
    assert ContactTag.objects.filter(contact=pool["wang"], tag=pool["vip"]).exists()
    # Inside Playwright's greenlet the ORM got a connection of its own (connections are
    # context-local); close it, or PostgreSQL cannot drop the test database afterwards.
    connection.close()

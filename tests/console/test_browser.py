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
from tests.console.browser import MARKS, log_in, open_page

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-contacts.png"

pytestmark = MARKS


@pytest.fixture
def page(monkeypatch):
    """768 tall: the README's screenshot is taken at this size."""
    with open_page(monkeypatch, height=768) as page:
        yield page


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

    log_in(page, live_server, cast.owner.staff)
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

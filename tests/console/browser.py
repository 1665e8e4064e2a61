"""What the console's headless-Chromium tests share: Debian's Chromium (Playwright cannot
download its own here), a page in Chinese, and logging in through the form."""

import contextlib
from pathlib import Path

import pytest

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
# a browser test module's `pytestmark`
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@contextlib.contextmanager
def open_page(monkeypatch, height: int = 900):
    """A fresh Chromium page, 1366 wide and `height` tall, closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe, so tell Django not to refuse them (this test only).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": height}, locale="zh-CN")
        context.set_default_timeout(10_000)
        try:
            yield context.new_page()
        finally:
            browser.close()


def log_in(page, live_server, staff) -> None:
    """Log in through the console's form as this staff member."""
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

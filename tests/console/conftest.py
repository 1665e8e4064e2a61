import pytest

from tests.console.browser import open_page


@pytest.fixture
def page(monkeypatch):
    """A headless Chromium page (tests/console/browser.py) for the console's browser tests."""
    with open_page(monkeypatch) as page:
        yield page

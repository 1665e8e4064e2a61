"""The "Activity summary" card at the top of a contact's profile: first/last seen, orders and
net spend (integer fen shown as yuan), last order (workspace time zone), last channel and a
30-day chart of daily event counts, all read from the aggregates kept on ingest; an empty
state; and the profile's access rules (agents: own contacts; outsiders: nothing)."""

import datetime
import json
import os
import re
import zoneinfo
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from siyu.core.audit import Actor
from siyu.tracking.actions import events_ingest
from siyu.tracking.models import ContactStats, DailyEventCount, ResolvedEvent
from siyu.tracking.orders import order_refund
from siyu.tracking.queries import contact_summary
from tests.console.browser import CHROMIUM, log_in
from tests.console.test_browser import page as page  # noqa: F401 - the Chromium page fixture
from tests.console.test_contact_activity import add_order

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def profile(client, contact_id: int, slug: str = "brand"):
    return client.get(f"/w/{slug}/contacts/{contact_id}/")


def field(html: str, name: str) -> str:
    match = re.search(rf'data-summary="{name}">(.*?)</dd>', html)
    assert match, name
    return match.group(1)


def chart_data(html: str) -> list[dict]:
    match = re.search(r'<script id="activity-data" type="application/json">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))


def event(message_id, type_, when, event="", traits=None, context=None, user_id="u-1"):
    return {
        "message_id": message_id,
        "type": type_,
        "user_id": user_id,
        "anonymous_id": "",
        "event": event,
        "properties": {},
        "traits": traits or {},
        "context": context or {},
        "timestamp": when,
        "received_at": timezone.now(),
    }


def ingest(cast, capture, user_id="u-1"):
    """An identify and a track now, and a track 40 days ago (outside the chart's window)."""
    now = timezone.now() - datetime.timedelta(minutes=5)
    rows = [
        event(f"{user_id}-old", "track", now - datetime.timedelta(days=40), "Old", user_id=user_id),
        event(f"{user_id}-id", "identify", now, traits={"name": "王小明"}, user_id=user_id),
        event(
            f"{user_id}-view",
            "track",
            now + datetime.timedelta(seconds=1),
            "Product Viewed",
            context={"channel": "miniprogram"},
            user_id=user_id,
        ),
    ]
    with capture(execute=True):
        events_ingest(workspace=cast.workspace, events=rows)
    contact_id = ResolvedEvent.objects.get(event__message_id=f"{user_id}-id").contact_id
    assert contact_id is not None
    return contact_id


def test_card_shows_the_aggregates_and_a_30_day_chart(
    cast, console, django_capture_on_commit_callbacks
):
    contact_id = ingest(cast, django_capture_on_commit_callbacks)
    contact = ResolvedEvent.objects.get(event__message_id="u-1-id").contact
    placed = datetime.datetime(2024, 5, 1, 16, 30, tzinfo=datetime.UTC)  # 00:30 in Shanghai
    big = add_order(cast, contact, "S-1", "199.90", placed_at=placed)
    add_order(cast, contact, "S-2", "50", placed_at=placed - datetime.timedelta(days=3))
    order_refund(workspace=cast.workspace, actor=Actor.system("test"), order=big, amount_fen=9990)
    assert DailyEventCount.objects.filter(contact_id=contact_id).exists()

    response = profile(console("owner"), contact_id)
    assert response.status_code == 200
    html = response.content.decode()
    assert "消费与活跃" in html
    assert field(html, "order_count") == "2"
    assert field(html, "net_spend") == "¥150.00"  # 199.90 + 50 - 99.90, in integer fen
    assert field(html, "last_order") == "2024-05-02 00:30"  # the workspace's time zone
    assert field(html, "last_channel") == "miniprogram"
    contact.refresh_from_db()
    first_seen = contact.first_seen_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    last_seen = contact.last_seen_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    assert field(html, "first_seen") == first_seen
    assert field(html, "last_seen") == last_seen
    # 30 zero-filled days ending today (Shanghai); the 40-day-old event is outside the window
    daily = chart_data(html)
    today = timezone.now().astimezone(SHANGHAI).date()
    assert len(daily) == 30
    assert daily[-1]["day"] == today.isoformat()
    assert daily[0]["day"] == (today - datetime.timedelta(days=29)).isoformat()
    assert sum(r["n"] for r in daily) == 2  # the identify and the track of today
    assert 'id="chart-activity"' in html and "暂无行为数据" not in html
    # ECharts comes from the local static files, never a CDN
    assert '<script src="/static/vendor/echarts/echarts.min.js">' in html
    assert 'echarts.init(document.getElementById("chart-activity"))' in html
    # every script and stylesheet is served by siyu itself (a CSRF token may spell "cdn")
    external = re.findall(r'(?:src|href)="((?:https?:)?//[^"]+)"', html)
    assert [url for url in external if re.search(r"\.(?:js|css)(?:\?|$)", url)] == []


def test_empty_state_without_events(cast, console, make_contact):
    contact = make_contact("李雷")
    html = profile(console("owner"), contact.pk).content.decode()
    assert "消费与活跃" in html and "暂无行为数据" in html
    assert field(html, "order_count") == "0"
    assert field(html, "net_spend") == "¥0.00"
    assert field(html, "last_order") == "—" and field(html, "last_channel") == "—"
    assert 'id="chart-activity"' not in html and "echarts.min.js" not in html
    # orders alone give numbers, but still no chart
    add_order(cast, contact, "E-1", "12.30")
    html = profile(console("owner"), contact.pk).content.decode()
    assert field(html, "order_count") == "1" and field(html, "net_spend") == "¥12.30"
    assert "暂无行为数据" in html


def test_summary_is_scoped_to_the_workspace(cast, make_contact, django_capture_on_commit_callbacks):
    contact_id = ingest(cast, django_capture_on_commit_callbacks)
    contact = ResolvedEvent.objects.get(event__message_id="u-1-id").contact
    add_order(cast, contact, "W-1", "10")
    assert ContactStats.objects.filter(contact_id=contact_id).exists()
    mine = contact_summary(cast.workspace, contact)
    assert mine.order_count == 1 and mine.net_spend_yuan == "10.00" and mine.has_activity
    # read with another workspace, the same contact has nothing
    theirs = contact_summary(cast.outsider_workspace, contact)
    assert theirs.order_count == 0 and theirs.net_spend_fen == 0 and theirs.last_channel == ""
    assert not theirs.has_activity


def test_agents_see_only_their_own_contacts_summary_and_outsiders_none(
    cast, console, make_contact, django_capture_on_commit_callbacks
):
    mine = make_contact("自己的", owner=cast.agent)
    theirs = make_contact("别人的", owner=cast.operator)
    add_order(cast, mine, "M-1", "8.80")
    add_order(cast, theirs, "T-1", "999")
    events_of = ingest(cast, django_capture_on_commit_callbacks)  # unassigned
    agent = console("agent")
    html = profile(agent, mine.pk).content.decode()
    assert field(html, "net_spend") == "¥8.80" and "¥999.00" not in html
    assert profile(agent, theirs.pk).status_code == 404
    assert profile(agent, events_of).status_code == 404
    outsider = console("outsider")
    for contact_id in (mine.pk, theirs.pk, events_of):
        for slug in ("brand", "other"):
            response = profile(outsider, contact_id, slug)
            assert response.status_code == 404
            assert "消费与活跃" not in response.content.decode()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_chart_is_drawn_in_the_browser(
    transactional_db, live_server, cast, page, django_capture_on_commit_callbacks
):
    """ECharts (served locally) draws the 30-day chart without a script error."""
    from playwright.sync_api import expect

    contact_id = ingest(cast, django_capture_on_commit_callbacks)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, cast.owner.staff)
    page.goto(f"{live_server.url}/w/brand/contacts/{contact_id}/")
    expect(page.locator("#contact-summary")).to_contain_text("消费与活跃")
    expect(page.locator("#chart-activity canvas")).to_have_count(1)
    if os.environ.get("SIYU_SCREENSHOT_SUMMARY"):
        page.screenshot(path=os.environ["SIYU_SCREENSHOT_SUMMARY"], full_page=True)
    assert errors == []
    connection.close()  # Playwright's greenlet has a connection of its own

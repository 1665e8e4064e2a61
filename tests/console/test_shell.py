"""The console shell: login, language, dashboard numbers, navigation by role."""

from django.test import Client


def test_login_page_is_chinese_even_for_an_english_browser(db):
    page = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").get("/login/")
    assert page.status_code == 200
    assert "登录" in page.content.decode()
    assert page.headers["Content-Language"] == "zh-hans"


def test_language_switch_to_english_and_back(cast, console):
    client = console("owner")
    client.post("/i18n/setlang/", {"language": "en", "next": "/w/brand/"})
    assert "Pool size" in client.get("/w/brand/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/w/brand/"})
    assert "客户总数" in client.get("/w/brand/").content.decode()


def test_login_with_email_and_password_lands_on_the_workspace(cast):
    from tests.conftest import PASSWORD

    client = Client()
    response = client.post(
        "/login/", {"username": "OWNER@brand.test", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/w/brand/"
    wrong = Client().post("/login/", {"username": "owner@brand.test", "password": "nope"})
    assert "邮箱或密码错误" in wrong.content.decode()


def test_dashboard_counts_the_pool_and_scopes_agents(cast, console, make_contact):
    make_contact("甲", source="douyin")
    make_contact("乙", source="douyin")
    make_contact("丙", source="xiaohongshu", owner=cast.agent)
    make_contact("丁", workspace=cast.outsider_workspace)
    owner_page = console("owner").get("/w/brand/")
    assert owner_page.status_code == 200
    assert owner_page.context["stats"]["total"] == 3
    assert owner_page.context["stats"]["new_week"] == 3
    by_source = {r["source"]: r["n"] for r in owner_page.context["stats"]["by_source"]}
    assert by_source == {"douyin": 2, "xiaohongshu": 1}
    # source labels are translated for the chart
    assert {r["name"] for r in owner_page.context["source_chart"]} == {"抖音", "小红书"}
    agent_page = console("agent").get("/w/brand/")
    assert agent_page.context["stats"]["total"] == 1


def test_empty_pool_shows_an_empty_state(cast, console):
    page = console("owner").get("/w/brand/").content.decode()
    assert "客户池还是空的" in page


def test_outsiders_and_anonymous_cannot_see_a_workspace(cast, console):
    assert console("outsider").get("/w/brand/").status_code == 404
    assert Client().get("/w/brand/").status_code == 302  # to the login page
    assert console("owner").get("/w/nope/").status_code == 404


def test_navigation_follows_the_role(cast, console):
    owner_nav = console("owner").get("/w/brand/").context["console_nav"]
    analyst_nav = console("analyst").get("/w/brand/").context["console_nav"]
    owner_urls = {item["url"] for item in owner_nav}
    analyst_urls = {item["url"] for item in analyst_nav}
    assert not any("audit" in u or "api-keys" in u for u in analyst_urls)
    assert analyst_urls <= owner_urls


def test_dashboard_numbers_are_cached_for_a_minute(cast, console, make_contact, settings):
    make_contact("甲")
    client = console("owner")
    assert client.get("/w/brand/").context["stats"]["total"] == 1
    make_contact("乙")
    assert client.get("/w/brand/").context["stats"]["total"] == 1  # cached
    # agents have their own cached numbers, not the workspace's
    assert console("agent").get("/w/brand/").context["stats"]["total"] == 0
    settings.SIYU_DASHBOARD_CACHE_SECONDS = 0
    assert client.get("/w/brand/").context["stats"]["total"] == 2


def test_no_page_loads_assets_from_a_cdn(cast, console):
    """A self-hosted tool must work offline and behind the Great Firewall: every script and
    stylesheet comes from our own /static/."""
    import re

    pages = [
        Client().get("/api/docs").content.decode(),
        Client().get("/login/").content.decode(),
        console("owner").get("/w/brand/").content.decode(),
    ]
    for html in pages:
        sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert sources
        assert all(s.startswith("/static/") for s in sources), sources

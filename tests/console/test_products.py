"""The console's products page (商品): the catalog built from e-commerce events, newest seen
first, keyset-paged, searchable; an empty state that says how products arrive."""

import datetime

import pytest
from django.utils import timezone

from siyu.accounts.permissions import Role
from siyu.tracking.models import Product

PAGE = "/w/brand/products/"


def text(response) -> str:
    return response.content.decode()


def product(ws, product_id: str, *, days_ago: int = 0, **fields) -> Product:
    seen = timezone.now() - datetime.timedelta(days=days_ago)
    return Product.objects.create(
        workspace=ws, product_id=product_id, first_seen_at=seen, last_seen_at=seen, **fields
    )


def test_the_owner_sees_the_catalog_newest_first(cast, console):
    ws = cast.workspace
    product(ws, "p-1", days_ago=2, name="拿铁", category="咖啡", price_fen=3250, views=7, adds=2)
    product(ws, "p-2", days_ago=1, name="马克杯", price_fen=18000, currency="USD")
    product(ws, "p-3", name="", sku="S-3")
    product(cast.outsider_workspace, "theirs", name="别家的商品")
    response = console("owner").get(PAGE)
    assert response.status_code == 200
    body = text(response)
    for words in ["商品", "品类", "价格", "浏览", "加购", "最近出现", "拿铁", "咖啡", "¥32.50"]:
        assert words in body, words
    assert "USD 180.00" in body and "（未命名）" in body
    assert "别家的商品" not in body
    order = [body.index(f'data-product="{p}"') for p in ("p-3", "p-2", "p-1")]
    assert order == sorted(order)
    assert '<td class="num">7</td>' in body and '<td class="num">2</td>' in body
    # linked in the navigation
    assert f'href="{PAGE}"' in body


def test_an_empty_catalog_says_how_products_arrive(cast, console):
    body = text(console("owner").get(PAGE))
    assert "暂无商品数据——发送 Product Viewed 等电商事件后这里会出现商品" in body
    assert 'href="/w/brand/data-sources/"' in body  # the owner can set up a write key


def test_search_and_category_filter(cast, console):
    ws = cast.workspace
    product(ws, "p-1", days_ago=2, name="拿铁", category="咖啡")
    product(ws, "p-2", days_ago=1, name="拿铁冰", category="冰饮")
    product(ws, "p-3", name="抹茶", category="茶")
    client = console("operator")
    body = text(client.get(PAGE, {"q": "拿铁"}))
    assert 'data-product="p-1"' in body and 'data-product="p-2"' in body
    assert 'data-product="p-3"' not in body
    body = text(client.get(PAGE, {"q": "p-3"}))
    assert 'data-product="p-3"' in body and 'data-product="p-1"' not in body
    body = text(client.get(PAGE, {"category": "冰饮"}))
    assert 'data-product="p-2"' in body and 'data-product="p-1"' not in body
    assert '<option value="冰饮" selected>' in body
    body = text(client.get(PAGE, {"q": "咖啡豆"}))
    assert "没有符合筛选条件的商品" in body and "暂无商品数据" not in body


def test_keyset_paging(cast, console, monkeypatch):
    monkeypatch.setattr("siyu.console.views.products.PAGE_SIZE", 2)
    ws = cast.workspace
    for n in range(5):
        product(ws, f"p-{n}", days_ago=n, name=f"商品{n}")
    client = console("analyst")
    seen, url = [], PAGE
    for _ in range(5):
        response = client.get(url)
        body = text(response)
        seen += [f"p-{n}" for n in range(5) if f'data-product="p-{n}"' in body]
        if 'rel="next"' not in body:
            break
        url = body.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert seen == ["p-0", "p-1", "p-2", "p-3", "p-4"]
    broken = text(client.get(PAGE, {"cursor": "nope"}))
    assert "翻页链接已失效" in broken and 'data-product="p-0"' in broken


@pytest.mark.parametrize("role", list(Role.values))
def test_every_member_role_may_read_it(cast, console, role):
    response = console(role).get(PAGE)
    assert response.status_code == 200
    nav = [item["url"] for item in response.context["console_nav"]]
    assert PAGE in nav


def test_outsiders_and_anonymous_visitors_get_nothing(cast, console, client):
    product(cast.workspace, "p-1", name="拿铁")
    outsider = console("outsider").get(PAGE)
    assert outsider.status_code == 404
    assert "拿铁" not in text(outsider)
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    # and their own workspace's page shows only their catalog
    theirs = text(console("outsider").get("/w/other/products/"))
    assert "拿铁" not in theirs and "暂无商品数据" in theirs


def test_english_on_request(cast, console):
    client = console("owner")
    client.post("/i18n/setlang/", {"language": "en", "next": PAGE})
    body = text(client.get(PAGE))
    assert "Products" in body and "No product data yet" in body

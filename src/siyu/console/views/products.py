"""Products (商品): the catalog built from Segment e-commerce events, newest seen first,
keyset-paged, searchable by name prefix or product id and filterable by category. Read-only:
the catalog is written by the resolver (siyu.tracking.products)."""

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws
from siyu.console.views.contact_activity import money
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace
from siyu.tracking.models import Product
from siyu.tracking.queries import product_categories, product_page, products

PAGE_SIZE = 50
TEMPLATE = "console/data/products.html"


def _query(**params: str) -> str:
    return urlencode({k: v for k, v in params.items() if v})


@workspace_view("contacts.view")
def product_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:255]
    category = request.GET.get("category", "").strip()[:255]
    cursor = request.GET.get("cursor", "")
    qs = products(workspace, q, category)
    error = False
    try:
        rows, next_cursor = product_page(qs, cursor, PAGE_SIZE)
    except SiyuError:  # a stale or edited cursor: the first page instead
        error, cursor = True, ""
        rows, next_cursor = product_page(qs, "", PAGE_SIZE)
    filtered = bool(q or category)
    query = _query(q=q, category=category)
    context = {
        "rows": [
            {
                "product": p,
                "price": "" if p.price_fen is None else money(p.price_fen, p.currency or "CNY"),
            }
            for p in rows
        ],
        "q": q,
        "category": category,
        "categories": product_categories(workspace),
        "filtered": filtered,
        "cursor": cursor,
        "query": query,
        "next_query": _query(q=q, category=category, cursor=next_cursor or ""),
        "has_next": bool(next_cursor),
        "list_error": error,
        # the empty state says how products arrive, unless filters hide them
        "catalog_empty": not rows
        and not cursor
        and (not filtered or not Product.objects.filter(workspace=workspace).exists()),
    }
    return render_ws(request, TEMPLATE, context)

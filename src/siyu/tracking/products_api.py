"""Products API: GET /api/v1/products (newest seen first, cursor paged, `q` a name prefix or
an exact product id, `category`) and GET /api/v1/products/{product_id}. The catalog is built
from Segment e-commerce events (products.py); it is read-only here."""

import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from siyu.core.api import allowed
from siyu.tracking.models import Product
from siyu.tracking.orders import yuan
from siyu.tracking.queries import get_product, product_page, products

products_router = Router(tags=["products"])


class ProductOut(Schema):
    id: int
    product_id: str
    sku: str
    name: str
    category: str
    brand: str
    variant: str
    price: str | None
    price_fen: int | None
    currency: str
    url: str
    image_url: str
    first_seen_at: datetime.datetime
    last_seen_at: datetime.datetime
    views: int
    adds: int
    updated_at: datetime.datetime


class ProductList(Schema):
    items: list[ProductOut]
    next: str | None


def _out(product: Product) -> dict[str, Any]:
    return {
        "id": product.pk,
        "product_id": product.product_id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "brand": product.brand,
        "variant": product.variant,
        "price": None if product.price_fen is None else yuan(product.price_fen),
        "price_fen": product.price_fen,
        "currency": product.currency,
        "url": product.url,
        "image_url": product.image_url,
        "first_seen_at": product.first_seen_at,
        "last_seen_at": product.last_seen_at,
        "views": product.views,
        "adds": product.adds,
        "updated_at": product.updated_at,
    }


@products_router.get("/products", response=ProductList, summary="The product catalog")
def list_products(
    request: HttpRequest, q: str = "", category: str = "", cursor: str = "", limit: int = 50
):
    """Newest seen first. `q`: a name prefix, or a product id exactly; `category`: exactly.
    Page with the returned `next` cursor."""
    workspace, _ = allowed(request, "contacts.view")
    limit = max(1, min(limit, 200))
    rows, next_cursor = product_page(products(workspace, q, category), cursor, limit)
    return {"items": [_out(p) for p in rows], "next": next_cursor}


@products_router.get("/products/{path:product_id}", response=ProductOut, summary="A product")
def get_one(request: HttpRequest, product_id: str):
    """By its `product_id` (URL-encoded); 404 when the workspace has no such product."""
    workspace, _ = allowed(request, "contacts.view")
    return _out(get_product(workspace, product_id))

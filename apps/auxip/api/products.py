"""`GET /odata/v1/Products` and `GET /odata/v1/Products(<id>)`."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxip.api.db import in_session
from auxip.api.download import parse_product_key
from auxip.api.envelope import collection
from auxip.api.errors import bad_request, not_found
from auxip.api.serialize import product_json
from auxip.api.settings import API_SETTINGS
from auxip.auth import Role, require
from auxip.catalog.models import Product
from auxip.catalog.views import ProductView, load_product_views
from auxip.odata import PRODUCTS, parse_query_options, products_select

ROOT = "/odata/v1"
READERS = (Role.DOWNLOAD, Role.ADMIN)


def add_product_routes(app: web.Application) -> None:
    app.router.add_get(f"{ROOT}/Products", list_products)
    app.router.add_get(f"{ROOT}/Products({{key}})", get_product)


async def list_products(request: web.Request) -> web.Response:
    await require(request, *READERS)
    settings = request.config_dict[API_SETTINGS]
    options = parse_query_options(request.query, PRODUCTS, page_cap=settings.max_page_size)
    page, count_select = products_select(options)

    expand = "Attributes" in options.expand

    def read(session: Session) -> tuple[list[ProductView], int | None]:
        products = load_product_views(session, page, attributes=expand)
        return products, (session.scalar(count_select) if count_select is not None else None)

    products, count = await in_session(request.app, read)
    items = [product_json(p, expand_attributes=expand, select=options.select) for p in products]
    return web.json_response(collection(request, "Products", options, items, count))


async def get_product(request: web.Request) -> web.Response:
    await require(request, *READERS)
    product_id = parse_product_key(request.match_info["key"])
    expand = request.query.get("$expand")
    if expand not in (None, "Attributes"):
        raise bad_request(f"$expand={expand} is not supported: only Attributes can be expanded")
    table = Product.__table__
    statement = select(table).where(table.c.id == product_id, table.c.evicted_at.is_(None))
    found = await in_session(request.app, lambda session: load_product_views(session, statement, bool(expand)))
    if not found:
        raise not_found(f"no product with Id {product_id}")
    body = {"@odata.context": "$metadata#Products/$entity", **product_json(found[0], expand_attributes=bool(expand))}
    return web.json_response(body)

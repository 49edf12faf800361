"""`auxip products list|get|download`: the catalog read directly (no HTTP), with the API's query semantics.

`list` compiles its options with the API's own `parse_query_options` and `products_select`, and prints the API's
entity JSON (`auxip.api.serialize`), so a filter behaves and fails exactly as `GET /odata/v1/Products` would.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from auxip.api.errors import ODataError
from auxip.api.formats import odata_timestamp
from auxip.api.serialize import product_json
from auxip.catalog.models import Product
from auxip.catalog.views import ProductView, load_product_views
from auxip.cli.common import (
    EXIT_CODES_HELP,
    FAILED,
    USAGE,
    ConfigOption,
    JsonOption,
    echo_json,
    fail,
    load,
    open_catalog,
    progress_console,
    table_console,
)
from auxip.config import AuxipConfig
from auxip.odata import PRODUCTS, parse_query_options, products_select
from auxip.storage import Storage, StorageError

products_app = typer.Typer(
    help=f"Products of the catalog, read directly from the configured database. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)


@dataclass(frozen=True, slots=True)
class ProductPage:
    """One page as the API would answer it; `next_skip` is set when the page cap cut it (more may follow)."""

    items: list[dict[str, Any]]
    count: int | None
    next_skip: int | None


@dataclass(frozen=True, slots=True)
class StoredProduct:
    view: ProductView
    storage_key: str
    evicted_at: datetime | None

    @property
    def md5(self) -> str | None:
        return next((c.value for c in self.view.checksums if c.algorithm == "MD5"), None)


class DownloadError(Exception):
    """The downloaded bytes are not the catalogued ones (the partial file has been removed)."""


def query_products(engine: Engine, params: Mapping[str, str], page_cap: int) -> ProductPage:
    """The `$`-options of `params` run as the API runs them; raises `ODataError` for a client mistake."""
    options = parse_query_options(params, PRODUCTS, page_cap=page_cap)
    page, count_select = products_select(options)
    with Session(engine) as session:
        products = load_product_views(session, page)
        count = session.scalar(count_select) if count_select is not None else None
    following = options.next_page(len(products))
    return ProductPage([product_json(p) for p in products], count, following[0] if following else None)


def find_product(engine: Engine, key: str) -> StoredProduct | None:
    """The product whose Id (a UUID) or else Name is `key`, evicted ones included, with its attributes."""
    table = Product.__table__
    try:
        condition = table.c.id == uuid.UUID(key)
    except ValueError:
        condition = table.c.name == key
    with Session(engine) as session:
        views = load_product_views(session, select(table).where(condition), attributes=True)
        if not views:
            return None
        storage_key, evicted_at = session.execute(
            select(table.c.storage_key, table.c.evicted_at).where(table.c.id == views[0].id)
        ).one()
    return StoredProduct(views[0], storage_key, evicted_at)


async def download_product(
    storage: Storage, product: StoredProduct, target: Path, advance: Callable[[int], None]
) -> None:
    """Stream the product's object to `target` (via `<target>.part`), then check its size and MD5."""
    partial = target.with_name(f"{target.name}.part")
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with partial.open("wb") as out:
            async for chunk in storage.read(product.storage_key):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                advance(len(chunk))
        expected = product.md5
        if size != product.view.content_length or digest.hexdigest() != expected:
            raise DownloadError(
                f"{product.view.name}: got {size} bytes with MD5 {digest.hexdigest()}, the catalog has "
                f"{product.view.content_length} bytes with MD5 {expected}; the file was removed"
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)


def _print_page(page: ProductPage) -> None:
    table = Table("Name", "ContentLength", "PublicationDate", "EvictionDate", "MD5")
    for item in page.items:
        md5 = next((c["Value"] for c in item["Checksum"] if c["Algorithm"] == "MD5"), "")
        table.add_row(item["Name"], str(item["ContentLength"]), item["PublicationDate"], item["EvictionDate"], md5)
    console = table_console()
    console.print(table)
    if page.count is not None:
        console.print(f"{page.count} products match")
    if page.next_skip is not None:
        console.print(f"more products may follow: --skip {page.next_skip}")


@products_app.command("list")
def products_list(
    filter_text: Annotated[str | None, typer.Option("--filter", help="an OData $filter, as the API takes it")] = None,
    orderby: Annotated[
        str | None, typer.Option("--orderby", help="an OData $orderby, e.g. 'PublicationDate desc'")
    ] = None,
    top: Annotated[
        int | None, typer.Option("--top", min=0, help="at most this many (capped at api.max_page_size)")
    ] = None,
    skip: Annotated[int | None, typer.Option("--skip", min=0, help="skip this many first")] = None,
    count: Annotated[bool, typer.Option("--count", help="also count every matching product")] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List online products like `GET /odata/v1/Products`; an invalid option exits 2 with the API's message.

    --json prints {"@odata.count"?, "value": [Products entities], "next_skip"?}.
    """
    config = load(config_path)
    params = {
        name: value
        for name, value in (("$filter", filter_text), ("$orderby", orderby), ("$top", top), ("$skip", skip))
        if value is not None
    }
    if count:
        params["$count"] = "true"
    try:
        page = query_products(open_catalog(config), {k: str(v) for k, v in params.items()}, config.api.max_page_size)
    except ODataError as exc:
        fail(exc.message, USAGE)
    if not as_json:
        _print_page(page)
        return
    document: dict[str, Any] = {}
    if page.count is not None:
        document["@odata.count"] = page.count
    document["value"] = page.items
    if page.next_skip is not None:
        document["next_skip"] = page.next_skip
    echo_json(document)


def _online(config: AuxipConfig, key: str) -> StoredProduct:
    found = find_product(open_catalog(config), key)
    if found is None:
        fail(f"no product with Id or Name {key}")
    if found.evicted_at is not None:
        fail(f"product {found.view.name} was evicted at {odata_timestamp(found.evicted_at)}: its file is gone")
    return found


@products_app.command("get")
def products_get(
    key: Annotated[str, typer.Argument(metavar="ID|NAME", help="the product Id or Name")],
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One online product with its Attributes (exit 1 if there is none or it was evicted)."""
    product = _online(load(config_path), key)
    document = product_json(product.view, expand_attributes=True)
    if as_json:
        echo_json({"@odata.context": "$metadata#Products/$entity", **document})
        return
    table = Table("Property", "Value", show_header=False)
    for name, value in document.items():
        if name == "Checksum":
            value = ", ".join(f"{c['Algorithm']} {c['Value']}" for c in value)
        elif name == "ContentDate":
            value = f"{value['Start']} .. {value['End']}"
        elif name == "Attributes":
            continue
        table.add_row(name, str(value))
    for attribute in document["Attributes"]:
        table.add_row(f"Attributes/{attribute['Name']}", f"{attribute['Value']} ({attribute['ValueType']})")
    table_console().print(table)


@products_app.command("download")
def products_download(
    key: Annotated[str, typer.Argument(metavar="ID|NAME", help="the product Id or Name")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write, or a directory (default: ./<Name>)")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing file")] = False,
    config_path: ConfigOption = None,
) -> None:
    """Copy a product's file from storage, then verify its MD5 (exit 1, file removed, on a mismatch).

    Evicted products are refused (exit 1): their bytes are no longer stored.
    """
    config = load(config_path)
    product = _online(config, key)
    target = output or Path(product.view.name)
    if target.is_dir():
        target = target / product.view.name
    if target.exists() and not overwrite:
        fail(f"{target} exists; give --overwrite to replace it")
    storage = config.open_storage()

    async def run() -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=progress_console(), transient=True) as progress:
            task = progress.add_task(product.view.name, total=product.view.content_length)
            try:
                await download_product(storage, product, target, lambda n: progress.advance(task, n))
            finally:
                await storage.close()

    try:
        asyncio.run(run())
    except (DownloadError, StorageError, OSError) as exc:
        fail(str(exc), FAILED)
    typer.echo(f"{target}: {product.view.content_length} bytes, MD5 {product.md5} verified")

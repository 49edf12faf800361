"""`GET`/`HEAD /odata/v1/Products(<Id>)/$value`: the product file itself, with ranges, ETag and conditional GET.

HTTP semantics (ranges, If-None-Match, If-Range, 416) are decided here once for every backend; only the body differs:
- local directory: zero-copy `loop.sendfile` on the connection's socket, the same call `web.FileResponse` makes.
  `FileResponse` itself is not used because (aiohttp 3.14, web_fileresponse.py) it overwrites the ETag with
  `<mtime>-<size>` (the contract's clients compare the catalog MD5), it silently serves a sibling `<file>.gz`/`.br`
  when the client accepts gzip (different bytes from the catalogued ones), and it answers multi-range requests 416;
- S3: the ranged GET body streamed in 1 MiB chunks through a `StreamResponse`.
Never a redirect: clients drop their credentials when redirected to another host.

Multiple ranges (`bytes=0-1,5-9`) are answered with the whole file (200), see `auxip.storage.ranges`.

`Last-Modified` is the PublicationDate: the moment these bytes became visible, stable across storage migrations
(a file's mtime is not). The ETag is the catalog MD5 in quotes, strong: the bytes are immutable for a given Id.

Hook for authentication, quotas and download records: `app[DOWNLOAD_GUARD](request, download)` returns an async
context manager entered after the product is found and the response planned (status, range and length are known, so
a quota can refuse with an `ODataError` such as 429 before any byte is sent) and exited after the transfer;
`download.bytes_sent` then holds the body bytes actually handed to the socket (exact on success; on a broken
connection a lower bound within one sendfile slice / chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from aiohttp import hdrs, web
from aiohttp.helpers import ETAG_ANY
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from auxip.api.db import in_session
from auxip.api.errors import ODataError, bad_request, not_found
from auxip.catalog.models import Checksum, Product
from auxip.storage import ByteRange, ObjectNotFoundError, RangeNotSatisfiableError, Storage, parse_range_header

log = logging.getLogger(__name__)

VALUE_PATH = "/odata/v1/Products({key})/$value"
CHUNK_SIZE = 1 << 20
# loop.sendfile is called per slice so `bytes_sent` advances during a long transfer; 16 MiB keeps the call count of
# a 1 GB file at 64, far too few to cost anything.
SENDFILE_SLICE = 16 << 20

_KEY = re.compile(r"'([^']*)'|([^']*)")


@dataclass(frozen=True, slots=True)
class ProductFile:
    """What the download needs from the catalog."""

    id: uuid.UUID
    name: str
    content_type: str
    content_length: int
    storage_key: str
    md5: str
    publication_date: datetime

    @property
    def etag(self) -> str:
        return f'"{self.md5}"'


@dataclass(slots=True)
class Download:
    """One answered download request, as the guard sees it; `bytes_sent` is updated while the body goes out."""

    product: ProductFile
    method: str
    status: int = 200
    byte_range: ByteRange | None = None
    # Body bytes this response carries (0 for HEAD, 304 and 416).
    length: int = 0
    bytes_sent: int = 0

    @property
    def complete(self) -> bool:
        return self.bytes_sent == self.length


DownloadGuard = Callable[[web.Request, Download], AbstractAsyncContextManager[object]]

STORAGE: web.AppKey[Storage] = web.AppKey("storage")
DOWNLOAD_GUARD: web.AppKey[DownloadGuard] = web.AppKey("download_guard")


@contextlib.asynccontextmanager
async def no_guard(request: web.Request, download: Download) -> AsyncIterator[None]:
    yield


def add_download_routes(app: web.Application) -> None:
    # add_get registers HEAD on the same handler; aiohttp drops the body of HEAD responses.
    app.router.add_get(VALUE_PATH, download_value)


def parse_product_key(key: str) -> uuid.UUID:
    """`Products(<uuid>)` as in the contract; `Products('<uuid>')` accepted too (some OData clients quote keys)."""
    match = _KEY.fullmatch(key)
    value = (match.group(1) or match.group(2)) if match else ""
    try:
        product_id = uuid.UUID(value)
    except ValueError:
        product_id = None
    # uuid.UUID also takes braces, `urn:uuid:` and unhyphenated forms; the contract's Id is the canonical form only.
    if product_id is None or str(product_id) != value.lower():
        raise bad_request(f"{key!r} is not a product Id: expected Products(<uuid>), e.g. Products({uuid.UUID(int=0)})")
    return product_id


async def download_value(request: web.Request) -> web.StreamResponse:
    product_id = parse_product_key(request.match_info["key"])
    product = await in_session(request.app, lambda session: _lookup(session, product_id))
    if product is None:
        raise not_found(f"no product with Id {product_id} is available for download")
    download = _plan(request, product)
    guard = request.app.get(DOWNLOAD_GUARD, no_guard)
    async with guard(request, download):
        return await _respond(request, download)


def _lookup(session: Session, product_id: uuid.UUID) -> ProductFile | None:
    row = session.execute(
        select(
            Product.name,
            Product.content_type,
            Product.content_length,
            Product.storage_key,
            Product.publication_date,
            Checksum.value,
        )
        .join(Checksum, and_(Checksum.product_id == Product.id, Checksum.algorithm == "MD5"))
        .where(Product.id == product_id, Product.evicted_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    name, content_type, length, key, published, md5 = row
    return ProductFile(product_id, name, content_type, length, key, md5.lower(), published)


def _plan(request: web.Request, product: ProductFile) -> Download:
    download = Download(product=product, method=request.method)
    size = product.content_length
    if _not_modified(request, product):
        download.status = 304
        return download
    try:
        byte_range = (
            parse_range_header(request.headers.get(hdrs.RANGE), size) if _range_applies(request, product) else None
        )
    except RangeNotSatisfiableError:
        download.status = 416
        return download
    if byte_range is not None:
        download.status, download.byte_range = 206, byte_range
    body_length = byte_range.length if byte_range is not None else size
    download.length = 0 if request.method == hdrs.METH_HEAD else body_length
    return download


def _not_modified(request: web.Request, product: ProductFile) -> bool:
    etags = request.if_none_match
    if etags is None:
        return False
    # If-None-Match uses the weak comparison: W/"<md5>" matches too.
    return any(etag.value in (product.md5, ETAG_ANY) for etag in etags)


def _range_applies(request: web.Request, product: ProductFile) -> bool:
    """If-Range: serve the range only if the client's validator still matches, else the whole file (RFC 9110 13.1.5)."""
    validator = request.headers.get(hdrs.IF_RANGE)
    if validator is None:
        return True
    if validator.startswith('"'):
        return validator == product.etag
    if validator.startswith("W/"):
        return False  # weak validators never match for If-Range
    since = request.if_range
    return since is not None and int(since.timestamp()) == int(product.publication_date.timestamp())


def _headers(product: ProductFile) -> dict[str, str]:
    return {
        hdrs.CONTENT_TYPE: product.content_type,
        hdrs.CONTENT_DISPOSITION: _content_disposition(product.name),
        hdrs.ETAG: product.etag,
        hdrs.ACCEPT_RANGES: "bytes",
    }


def _content_disposition(name: str) -> str:
    plain = name.replace("\\", "\\\\").replace('"', '\\"')
    if name.isascii():
        return f'attachment; filename="{plain}"'
    # RFC 6266: non-ASCII names go in filename* (RFC 8187), with an ASCII fallback for old clients.
    fallback = plain.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _respond(request: web.Request, download: Download) -> web.StreamResponse:
    product = download.product
    if download.status == 416:
        raise ODataError(
            416,
            "RangeNotSatisfiable",
            f"the requested range is outside the file of {product.content_length} bytes",
            {hdrs.CONTENT_RANGE: f"bytes */{product.content_length}", hdrs.ACCEPT_RANGES: "bytes"},
        )
    response = web.StreamResponse(status=download.status, headers=_headers(product))
    response.last_modified = product.publication_date
    if download.status == 304:
        del response.headers[hdrs.CONTENT_TYPE]  # a 304 describes the cached representation, it has no body
        await response.prepare(request)
        return response
    byte_range = download.byte_range or ByteRange(0, product.content_length)
    response.content_length = byte_range.length
    if download.byte_range is not None:
        response.headers[hdrs.CONTENT_RANGE] = byte_range.content_range(product.content_length)
    if download.length == 0:  # HEAD, or an empty file
        await response.prepare(request)
        await response.write_eof()
        return response
    storage = request.app[STORAGE]
    path = storage.local_path(product.storage_key)
    try:
        if path is not None:
            await _send_file(request, response, path, byte_range, download)
        else:
            await _send_stream(request, response, storage, byte_range, download)
    except ObjectNotFoundError:
        # Evicted between the catalog lookup and the read (the row is marked before the file is removed).
        log.warning("product %s (%s) has no stored object", product.id, product.storage_key)
        raise not_found(f"product {product.id} is no longer available for download") from None
    except ConnectionError:
        # The client went away mid-body: nothing to answer; the guard sees bytes_sent < length.
        log.info("download of %s interrupted after %d of %d bytes", product.id, download.bytes_sent, download.length)
    except Exception:
        if not response.prepared:
            raise  # headers not sent yet: the error middleware can still answer properly
        # Headers are out with a Content-Length: cut the connection so the client sees a broken transfer.
        log.exception("download of %s failed after %d bytes", product.id, download.bytes_sent)
        if request.transport is not None:
            request.transport.abort()
    return response


async def _send_file(
    request: web.Request, response: web.StreamResponse, path: Path, byte_range: ByteRange, download: Download
) -> None:
    file = await _open(path)
    try:
        size = (await asyncio.to_thread(os.fstat, file.fileno())).st_size
        if size != download.product.content_length:
            # Serving other bytes than the catalogued ones would fail every client's verification: a real fault.
            raise RuntimeError(
                f"stored file {path} has {size} bytes, the catalog says {download.product.content_length}"
            )
        await response.prepare(request)
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("client disconnected before the body")
        loop = asyncio.get_running_loop()
        offset, remaining = byte_range.start, byte_range.length
        while remaining > 0:
            sent = await loop.sendfile(transport, file, offset, min(remaining, SENDFILE_SLICE))
            if sent == 0:
                raise ConnectionResetError("sendfile made no progress")
            offset, remaining = offset + sent, remaining - sent
            download.bytes_sent += sent
        await response.write_eof()
    finally:
        await asyncio.to_thread(file.close)


async def _open(path: Path) -> BinaryIO:
    try:
        return await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        raise ObjectNotFoundError(str(path)) from None


async def _send_stream(
    request: web.Request, response: web.StreamResponse, storage: Storage, byte_range: ByteRange, download: Download
) -> None:
    async with contextlib.aclosing(storage.read(download.product.storage_key, byte_range, CHUNK_SIZE)) as chunks:
        # The first chunk before the headers: a missing object can still be answered 404 instead of a broken 200.
        chunk = await anext(chunks, b"")
        await response.prepare(request)
        while chunk:
            await response.write(chunk)
            download.bytes_sent += len(chunk)
            chunk = await anext(chunks, b"")
    if download.bytes_sent != byte_range.length:
        # Fewer bytes than Content-Length: the client must see a broken transfer, not a short "complete" one.
        raise RuntimeError(f"storage returned {download.bytes_sent} of {byte_range.length} bytes")
    await response.write_eof()

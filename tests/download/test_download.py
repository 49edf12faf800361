"""GET/HEAD Products(<Id>)/$value against a real aiohttp server, on the local and the S3 backend."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine

from auxip.api.download import DOWNLOAD_GUARD, Download
from auxip.api.errors import ODataError
from auxip.storage import Storage

from .conftest import ClientFactory, Publisher, evict, make_app

pytestmark = pytest.mark.asyncio

Client = TestClient[web.Request, web.Application]


def url(product_id: uuid.UUID | str) -> str:
    return f"/odata/v1/Products({product_id})/$value"


async def test_full_download_is_exact_and_matches_catalog_md5(
    client: Client, publish: Publisher, content: bytes
) -> None:
    product_id = await publish(content, name="S1A_OPER_AUX_RESORB_full.EOF.zip")
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()

    async with client.get(url(product_id)) as response:
        body = await response.read()

    assert response.status == 200
    assert len(body) == len(content)
    assert hashlib.md5(body, usedforsecurity=False).hexdigest() == md5
    assert body == content
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Disposition"] == 'attachment; filename="S1A_OPER_AUX_RESORB_full.EOF.zip"'
    assert response.headers["ETag"] == f'"{md5}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"].endswith(" GMT")
    assert "Location" not in response.headers


async def test_quoted_key_is_accepted(client: Client, publish: Publisher) -> None:
    product_id = await publish(b"quoted key")
    async with client.get(url(f"'{product_id}'")) as response:
        assert response.status == 200
        assert await response.read() == b"quoted key"


async def test_head_has_the_get_headers_and_no_body(client: Client, publish: Publisher, content: bytes) -> None:
    product_id = await publish(content, name="head.zip")
    async with client.get(url(product_id)) as get:
        await get.read()
    async with client.head(url(product_id)) as head:
        body = await head.read()

    assert head.status == 200
    assert body == b""
    for header in ("Content-Type", "Content-Length", "Content-Disposition", "ETag", "Accept-Ranges", "Last-Modified"):
        assert head.headers[header] == get.headers[header], header
    assert head.headers["Content-Length"] == str(len(content))


async def test_first_kib_range(client: Client, publish: Publisher, content: bytes) -> None:
    product_id = await publish(content)
    async with client.get(url(product_id), headers={"Range": "bytes=0-1023"}) as response:
        body = await response.read()
    assert response.status == 206
    assert body == content[:1024]
    assert response.headers["Content-Length"] == "1024"
    assert response.headers["Content-Range"] == f"bytes 0-1023/{len(content)}"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=-500", -500, None),  # suffix
        ("bytes=5000000-", 5_000_000, None),  # open-ended
        ("bytes=1048575-1048576", 1_048_575, 1_048_577),  # across a 1 MiB chunk boundary
        ("bytes=10-99999999999", 10, None),  # last byte beyond the end is clamped
    ],
)
async def test_ranges(
    client: Client, publish: Publisher, content: bytes, header: str, start: int, end: int | None
) -> None:
    product_id = await publish(content)
    expected = content[start:end]
    first = start % len(content)
    async with client.get(url(product_id), headers={"Range": header}) as response:
        body = await response.read()
    assert response.status == 206
    assert body == expected
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(content)}"


async def test_unsatisfiable_range_is_416(client: Client, publish: Publisher, content: bytes) -> None:
    product_id = await publish(content)
    async with client.get(url(product_id), headers={"Range": f"bytes={len(content)}-"}) as response:
        body = await response.json()
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(content)}"
    assert body["error"]["code"] == "RangeNotSatisfiable"


async def test_multiple_ranges_get_the_whole_file(client: Client, publish: Publisher) -> None:
    product_id = await publish(b"0123456789")
    async with client.get(url(product_id), headers={"Range": "bytes=0-1,5-6"}) as response:
        assert response.status == 200
        assert await response.read() == b"0123456789"


async def test_if_none_match_304(client: Client, publish: Publisher, content: bytes) -> None:
    product_id = await publish(content)
    async with client.head(url(product_id)) as head:
        etag = head.headers["ETag"]
    for validator in (etag, f"W/{etag}", "*", f'"other", {etag}'):
        async with client.get(url(product_id), headers={"If-None-Match": validator}) as response:
            assert response.status == 304, validator
            assert await response.read() == b""
            assert response.headers["ETag"] == etag
    async with client.get(url(product_id), headers={"If-None-Match": '"0123"'}) as response:
        assert response.status == 200
        assert len(await response.read()) == len(content)


async def test_if_range_with_stale_etag_sends_everything(client: Client, publish: Publisher) -> None:
    product_id = await publish(b"abcdef")
    async with client.head(url(product_id)) as head:
        etag = head.headers["ETag"]
    async with client.get(url(product_id), headers={"Range": "bytes=2-", "If-Range": etag}) as response:
        assert (response.status, await response.read()) == (206, b"cdef")
    async with client.get(url(product_id), headers={"Range": "bytes=2-", "If-Range": '"stale"'}) as response:
        assert (response.status, await response.read()) == (200, b"abcdef")


async def _assert_odata_error(response_status: int, body: dict[str, dict[str, str]], status: int, code: str) -> None:
    assert response_status == status
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_unknown_product_404(client: Client) -> None:
    async with client.get(url(uuid.uuid4())) as response:
        await _assert_odata_error(response.status, await response.json(), 404, "NotFound")


async def test_evicted_product_404(client: Client, publish: Publisher, engine: Engine) -> None:
    product_id = await publish(b"soon gone")
    evict(engine, product_id)
    async with client.get(url(product_id)) as response:
        await _assert_odata_error(response.status, await response.json(), 404, "NotFound")
    async with client.head(url(product_id)) as response:
        assert response.status == 404


@pytest.mark.parametrize(
    "key",
    [
        "not-a-uuid",
        "12345",
        "'0e0a2a64-0000-0000-0000-00000000000'",
        "0e0a2a64ad6f4f1b9d2b2c5a3b6f7e10",
        "urn:uuid:0e0a2a64-ad6f-4f1b-9d2b-2c5a3b6f7e10",
    ],
)
async def test_malformed_id_400(client: Client, key: str) -> None:
    async with client.get(url(key)) as response:
        await _assert_odata_error(response.status, await response.json(), 400, "BadRequest")


async def test_object_missing_from_storage_404(client: Client, publish: Publisher, storage: Storage) -> None:
    product_id = await publish(b"orphan", name="orphan.zip")
    await storage.delete("aux/2026/orphan.zip")
    async with client.get(url(product_id)) as response:
        await _assert_odata_error(response.status, await response.json(), 404, "NotFound")


async def test_32_parallel_ranged_downloads_reassemble(client: Client, publish: Publisher, content: bytes) -> None:
    product_id = await publish(content)
    parts = 32
    step = -(-len(content) // parts)
    ranges = [(start, min(start + step, len(content))) for start in range(0, len(content), step)]

    async def fetch(start: int, end: int) -> tuple[int, bytes]:
        async with client.get(url(product_id), headers={"Range": f"bytes={start}-{end - 1}"}) as response:
            assert response.status == 206
            return start, await response.read()

    results = await asyncio.gather(*(fetch(start, end) for start, end in ranges), return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    assert len(results) == parts
    reassembled = b"".join(body for _, body in sorted(r for r in results if not isinstance(r, BaseException)))
    assert reassembled == content


async def test_guard_sees_planned_and_sent_bytes(
    aiohttp_client: ClientFactory, engine: Engine, storage: Storage, publish: Publisher, content: bytes
) -> None:
    seen: list[tuple[str, int, int, int, bool]] = []

    @contextlib.asynccontextmanager
    async def guard(request: web.Request, download: Download) -> AsyncIterator[None]:
        assert download.bytes_sent == 0
        yield
        seen.append((request.method, download.status, download.length, download.bytes_sent, download.complete))

    app = make_app(engine, storage)
    app[DOWNLOAD_GUARD] = guard
    client = await aiohttp_client(app)
    product_id = await publish(content)
    async with client.get(url(product_id)) as response:
        await response.read()
    async with client.get(url(product_id), headers={"Range": "bytes=0-1023"}) as response:
        await response.read()
    async with client.head(url(product_id)) as response:
        await response.read()
    assert seen == [
        ("GET", 200, len(content), len(content), True),
        ("GET", 206, 1024, 1024, True),
        ("HEAD", 200, 0, 0, True),
    ]


async def test_guard_can_refuse_with_an_odata_error(
    aiohttp_client: ClientFactory, engine: Engine, storage: Storage, publish: Publisher
) -> None:
    @contextlib.asynccontextmanager
    async def over_quota(request: web.Request, download: Download) -> AsyncIterator[None]:
        raise ODataError(429, "TooManyRequests", "parallel download quota reached", {"Retry-After": "30"})
        yield

    app = make_app(engine, storage)
    app[DOWNLOAD_GUARD] = over_quota
    client = await aiohttp_client(app)
    product_id = await publish(b"refused")
    async with client.get(url(product_id)) as response:
        await _assert_odata_error(response.status, await response.json(), 429, "TooManyRequests")
        assert response.headers["Retry-After"] == "30"

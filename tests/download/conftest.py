"""Download fixtures: a migrated SQLite catalog, a storage backend (local directory or real S3), the API app."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, update

from auxip.api.db import ENGINE
from auxip.api.download import STORAGE, add_download_routes
from auxip.api.errors import odata_errors
from auxip.catalog import ProductRecord, publish_product
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.storage import LocalStorage, S3Settings, S3Storage, Storage
from auxip_testing.s3 import S3Server

MIB = 1 << 20
# Odd size, several 1 MiB chunks, and above the S3 fixture's 5 MiB multipart threshold (3 parts).
CONTENT_SIZE = 11 * MIB + 123
BACKENDS = ["local", pytest.param("s3", marks=pytest.mark.integration)]
BASE_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="session")
def content() -> bytes:
    return os.urandom(CONTENT_SIZE)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url)
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


def s3_storage(server: S3Server, prefix: str = "archive") -> S3Storage:
    bucket = server.fresh_bucket_name()
    server.client().create_bucket(Bucket=bucket)
    settings = S3Settings(
        endpoint_url=server.endpoint_url,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=server.region,
        # The smallest S3 allows, so an 11 MiB test file exercises the multipart path.
        multipart_threshold=5 * MIB,
        part_size=5 * MIB,
    )
    return S3Storage(bucket, prefix, settings)


@pytest_asyncio.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    backend: Storage
    if request.param == "local":
        root = tmp_path / "archive"
        root.mkdir()
        backend = LocalStorage(root)
    else:
        backend = s3_storage(request.getfixturevalue("s3_server"))
    try:
        yield backend
    finally:
        await backend.close()


def record(name: str, data: bytes, key: str) -> ProductRecord:
    return ProductRecord(
        name=name,
        content_length=len(data),
        checksums={
            "MD5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "SHA256": hashlib.sha256(data).hexdigest(),
        },
        origin_date=BASE_TIME,
        content_date_start=BASE_TIME,
        content_date_end=BASE_TIME + timedelta(days=1),
        storage_key=key,
        retention=timedelta(days=90),
        content_type="application/zip",
    )


Publisher = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
def publish(engine: Engine, storage: Storage) -> Publisher:
    """`await publish(data, name=...)`: store the bytes, publish the product, return its Id."""

    async def run(data: bytes, name: str | None = None) -> uuid.UUID:
        name = name or f"S1A_OPER_AUX_RESORB_OPOD_{uuid.uuid4().hex[:8]}.EOF.zip"
        key = f"aux/2026/{name}"
        info = await storage.put_stream(key, _chunks(data))
        assert info.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
        return publish_product(engine, record(name, data, key)).id

    return run


async def _chunks(data: bytes, size: int = 3 * MIB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def evict(engine: Engine, product_id: uuid.UUID) -> None:
    with engine.begin() as conn:
        conn.execute(update(Product).where(Product.id == product_id).values(evicted_at=datetime.now(UTC)))


def make_app(engine: Engine, storage: Storage) -> web.Application:
    app = web.Application(middlewares=[odata_errors])
    app[ENGINE] = engine
    app[STORAGE] = storage
    add_download_routes(app)
    return app


@pytest_asyncio.fixture
async def client(
    aiohttp_client: ClientFactory, engine: Engine, storage: Storage
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(make_app(engine, storage))

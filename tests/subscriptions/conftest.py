"""Subscription fixtures: a migrated database per test (SQLite and the session's real PostgreSQL), a publisher,
an API client whose caller is chosen per request, and the real notification recorder."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from sqlalchemy import Engine

from auxip.api.db import ENGINE
from auxip.api.errors import ODataError, odata_errors
from auxip.api.subscriptions import PRINCIPAL_RESOLVER, add_subscription_routes
from auxip.catalog import AttributeValue, ProductRecord, publish_product
from auxip.catalog.migrate import make_engine, upgrade
from auxip_testing.databases import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request, tmp_path, "subs")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


Publish = Callable[..., uuid.UUID]


@pytest.fixture
def publish(engine: Engine) -> Publish:
    """`publish(name, attributes=None)` -> the new product's Id (published now, through the real publication path)."""

    def run(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> uuid.UUID:
        content = f"content of {name}".encode()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        record = ProductRecord(
            name=name,
            content_length=len(content),
            checksums={"MD5": hashlib.md5(content, usedforsecurity=False).hexdigest()},
            origin_date=start,
            content_date_start=start,
            content_date_end=start + timedelta(days=1),
            storage_key=f"aux/{name}",
            retention=timedelta(days=90),
            attributes=attributes or {},
        )
        published = publish_product(engine, record)
        # Keep PublicationDates and SubmissionDates (ms precision) in distinct milliseconds.
        time.sleep(0.002)
        return published.id

    return run


async def _header_principal(request: web.Request) -> tuple[str, bool]:
    user = request.headers.get("X-Test-User")
    if not user:
        raise ODataError(401, "Unauthorized", "authentication required")
    return user, request.headers.get("X-Test-Reporting") == "1"


@pytest.fixture
async def api(engine: Engine, aiohttp_client: AiohttpClient) -> TestClient[web.Request, web.Application]:
    """The Subscriptions API; the caller is the `X-Test-User` header (`X-Test-Reporting: 1` sees everything)."""
    app = web.Application(middlewares=[odata_errors])
    app[ENGINE] = engine
    app[PRINCIPAL_RESOLVER] = _header_principal
    add_subscription_routes(app)
    return await aiohttp_client(app)

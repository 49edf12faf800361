"""Catalog fixtures: a migrated database per test, on SQLite (a temp file) and on the session's real PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from auxip.catalog import ProductRecord
from auxip.catalog.migrate import make_engine, upgrade
from auxip_testing.databases import BACKENDS, database_url

RecordFactory = Callable[..., ProductRecord]


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not migrated) on the backend of the parameter."""
    yield from database_url(request, tmp_path, "catalog")


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    """A migrated catalog database."""
    upgrade(catalog_url)
    # pool_size above the thread count of the concurrency tests, so no thread waits for a connection.
    kwargs: dict[str, Any] = {} if catalog_url.startswith("sqlite") else {"pool_size": 8}
    eng = make_engine(catalog_url, **kwargs)
    try:
        yield eng
    finally:
        eng.dispose()


BASE_TIME = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _record(index: int, **overrides: Any) -> ProductRecord:
    default_name = f"S1A_OPER_AUX_POEORB_OPOD_{index:08d}_V20260101T000000_20260102T000000.EOF.zip"
    name = overrides.pop("name", default_name)
    content = overrides.pop("content", f"content of {name}".encode())
    start = BASE_TIME + timedelta(hours=index)
    fields: dict[str, Any] = {
        "name": name,
        "content_length": len(content),
        "checksums": {
            "MD5": hashlib.md5(content, usedforsecurity=False).hexdigest(),
            "SHA256": hashlib.sha256(content).hexdigest(),
        },
        "origin_date": start,
        "content_date_start": start,
        "content_date_end": start + timedelta(days=1),
        "storage_key": f"aux/{name}",
        "eviction_date": start + timedelta(days=90),
        "attributes": {
            "productType": "AUX_POEORB",
            "platformShortName": "SENTINEL-1",
            "orbitNumber": index,
            "beginningDateTime": start,
        },
    }
    fields.update(overrides)
    return ProductRecord(**fields)


@pytest.fixture
def make_record() -> RecordFactory:
    """`make_record(i, **overrides)`: a valid, distinct orbit-file record; `content=` changes the bytes (MD5)."""
    return _record

"""The OData source against this repository's own AUXIP API: PublicationDate windows, paging, fetch, refusals.

The large catalog (2,500 products, three pages of 1,000) is bulk-loaded: publishing one by one with bytes costs
~25 ms a product. Bytes are stored for the products the tests fetch; listing never reads them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import update
from sqlalchemy.orm import Session

from auxip.auth import Role
from auxip.catalog.bulk import bulk_load
from auxip.catalog.models import Product
from auxip.catalog.records import ProductRecord
from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.odata import ODataSource, odata_datetime, service_root
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import UNLIMITED
from auxip_testing.api_server import (
    ApiServer,
    default_config,
    publish_content,
    run_api,
    sample_content,
    with_content,
)
from auxip_testing.sample_products import sample_records

USERNAME = "ingest-peer"
PASSWORD = secrets.token_urlsafe(16)
COUNT = 2500


@dataclass(frozen=True)
class Catalog:
    server: ApiServer
    records: list[ProductRecord]
    #: Name -> bytes of the products whose content is stored.
    contents: dict[str, bytes]


async def _store(server: ApiServer, record: ProductRecord, data: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await server.storage.put_stream(record.storage_key, chunks())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    with run_api(default_config(tmp_path_factory.mktemp("odata-source") / "data"), notify_interval=None) as server:
        server.add_user(USERNAME, PASSWORD, Role.DOWNLOAD)
        records, contents = [], {}
        for index, record in enumerate(sample_records(COUNT, seed=7)):
            data = sample_content(record, 1000 + index % 5000)
            # Attributes are not what these tests are about, and loading them is most of a bulk load's time.
            records.append(dataclasses.replace(with_content(record, data), attributes={}))
            if index % 600 == 0:
                server.call(_store(server, record, data))
                contents[record.name] = data
        assert bulk_load(server.engine, records).inserted == COUNT
        yield Catalog(server, records, contents)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ApiServer]:
    """An empty catalog of its own, for tests that publish or evict."""
    with run_api(default_config(tmp_path / "data"), notify_interval=None) as server:
        server.add_user(USERNAME, PASSWORD, Role.DOWNLOAD)
        yield server


def make_source(server: ApiServer, credentials: Credentials | None = None, **settings: Any) -> ODataSource:
    page_size = settings.pop("page_size", 1000)
    url = server.service_root.replace("http://", "odata://", 1)
    values: dict[str, Any] = {"name": "peer-auxip", "url": url, **settings}
    creds = credentials or Credentials(username=USERNAME, password=PASSWORD)
    return ODataSource(SourceSettings(**values), creds, UNLIMITED, page_size=page_size)


async def listed(source: ODataSource) -> list[RemoteFile]:
    return [entry async for entry in source.list()]


def publish(server: ApiServer, records: list[ProductRecord]) -> list[str]:
    for record in records:
        server.call(publish_content(server.engine, server.storage, record, sample_content(record, 3000)))
    return [record.name for record in records]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.mark.integration
@pytest.mark.parametrize("page_size", [1000, 2500])  # 2500 > the server's page cap: it pages with @odata.nextLink
async def test_lists_every_product_exactly_once_across_pages(catalog: Catalog, page_size: int) -> None:
    source = make_source(catalog.server, page_size=page_size)
    try:
        entries = await listed(source)
    finally:
        await source.close()
    assert len(entries) == COUNT
    assert len({entry.path for entry in entries}) == COUNT
    by_name = {entry.name: entry for entry in entries}
    assert sorted(by_name) == sorted(record.name for record in catalog.records)
    for record in catalog.records[::97]:
        entry = by_name[record.name]
        assert (entry.size, entry.checksum, entry.version) == (record.content_length, ("MD5", record.md5), entry.path)
        assert entry.origin_date == record.origin_date
    dates = [entry.modified for entry in entries]
    assert dates == sorted(dates)
    assert source.last_seen == dates[-1]


@pytest.mark.integration
async def test_fetches_byte_identical_with_the_advertised_md5(catalog: Catalog, tmp_path: Path) -> None:
    source = make_source(catalog.server, odata_filter=" or ".join(f"Name eq '{name}'" for name in catalog.contents))
    try:
        entries = await listed(source)
        for entry in entries:
            assert await source.fetch(entry, tmp_path / entry.name) == entry.size
    finally:
        await source.close()
    assert sorted(entry.name for entry in entries) == sorted(catalog.contents)
    for entry in entries:
        data = (tmp_path / entry.name).read_bytes()
        assert data == catalog.contents[entry.name]
        assert entry.checksum == ("MD5", md5(data))


@pytest.mark.integration
async def test_odata_filter_narrows_the_window(catalog: Catalog) -> None:
    source = make_source(catalog.server, odata_filter="startswith(Name,'S1B_')")
    try:
        names = sorted(entry.name for entry in await listed(source))
    finally:
        await source.close()
    assert names == sorted(record.name for record in catalog.records if record.name.startswith("S1B_"))
    assert 0 < len(names) < COUNT


@pytest.mark.integration
async def test_wrong_password_is_permanent(catalog: Catalog) -> None:
    source = make_source(catalog.server, Credentials(username=USERNAME, password=secrets.token_urlsafe(16)))
    try:
        with pytest.raises(PermanentSourceError, match="HTTP 401"):
            await listed(source)
    finally:
        await source.close()


@pytest.mark.integration
async def test_cursor_window_returns_newer_products_and_the_overlap(fresh: ApiServer) -> None:
    records = list(sample_records(10, seed=21))
    early = publish(fresh, records[:5])
    await asyncio.sleep(1.3)  # further back than the overlap below
    late = publish(fresh, records[5:7])
    source = make_source(fresh, overlap_seconds=1.0)
    try:
        first = await listed(source)
        assert [entry.name for entry in first] == early + late
        cursor = source.last_seen
        assert cursor == first[-1].modified
        newer = publish(fresh, records[7:])
        source.cursor = cursor
        second = await listed(source)
        assert cursor is not None
        in_overlap = [entry.name for entry in first if entry.modified > cursor - timedelta(seconds=1)]
        assert in_overlap == late
        assert [entry.name for entry in second] == late + newer
        assert source.last_seen == second[-1].modified
        # Nothing new: the overlap again, and the cursor stays where it was.
        source.cursor = source.last_seen
        third = await listed(source)
        again = [entry.name for entry in second if entry.modified > source.cursor - timedelta(seconds=1)]
        assert [entry.name for entry in third] == again
        assert newer[-1] in again
        assert source.last_seen == source.cursor
    finally:
        await source.close()


@pytest.mark.integration
async def test_ignore_before_starts_the_window(fresh: ApiServer) -> None:
    records = list(sample_records(4, seed=22))
    publish(fresh, records[:2])
    time.sleep(0.01)
    boundary = datetime.now(UTC)
    late = publish(fresh, records[2:])
    source = make_source(fresh, ignore_before=boundary)
    try:
        assert [entry.name for entry in await listed(source)] == late
    finally:
        await source.close()


@pytest.mark.integration
async def test_evicted_product_is_gone(fresh: ApiServer, tmp_path: Path) -> None:
    publish(fresh, list(sample_records(2, seed=23)))
    source = make_source(fresh)
    try:
        evicted, kept = await listed(source)
        with Session(fresh.engine) as session, session.begin():
            session.execute(
                update(Product).where(Product.id == uuid.UUID(evicted.path)).values(evicted_at=datetime.now(UTC))
            )
        with pytest.raises(RemoteFileGone, match="HTTP 404"):
            await source.fetch(evicted, tmp_path / "evicted")
        assert await source.fetch(kept, tmp_path / "kept") == kept.size
    finally:
        await source.close()
    assert not (tmp_path / "evicted").exists()


@pytest.mark.integration
async def test_static_bearer_token(fresh: ApiServer) -> None:
    names = publish(fresh, list(sample_records(3, seed=24)))
    form = {"grant_type": "password", "username": USERNAME, "password": PASSWORD, "client_id": "auxip-api"}
    answer = await asyncio.to_thread(requests.post, fresh.token_url, data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    source = make_source(fresh, Credentials(token=answer.json()["access_token"]))
    try:
        assert [entry.name for entry in await listed(source)] == names
    finally:
        await source.close()


def test_window_filter_and_urls() -> None:
    settings = SourceSettings(name="peer", url="odatas://peer.example.org/odata/v1/", overlap_seconds=60,
                              odata_filter="startswith(Name,'S1A_')")  # fmt: skip
    source = ODataSource(settings, Credentials(), UNLIMITED)
    assert source.service_root == "https://peer.example.org/odata/v1"
    assert source.window_filter() == "(startswith(Name,'S1A_'))"
    source.cursor = datetime(2024, 1, 1, 0, 1, 0, 123999, tzinfo=UTC)
    assert source.window_filter() == "PublicationDate gt 2024-01-01T00:00:00.123Z and (startswith(Name,'S1A_'))"
    assert odata_datetime(datetime(2024, 5, 6, 7, 8, 9)) == "2024-05-06T07:08:09.000Z"
    with pytest.raises(PermanentSourceError):
        service_root("https://peer.example.org/odata/v1")

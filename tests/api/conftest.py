"""Live API servers for the tests in tests/api: one SQLite and one PostgreSQL catalog with a known content.

Each catalog holds, in publication order:

1. `BULK_COUNT` (1100) small `AUX_TEC` products loaded with `bulk_load` (no bytes: they exist only to push one query
   past the server page cap of 1000 and check `@odata.nextLink`); their ContentDate is in 2015 and their names start
   with `S1__AUX_TEC`, so they never match the windows and prefixes used for the fixed products;
2. the `FIXED` products, published one by one with `publish_product` and real bytes in storage, with names, validity
   windows and attributes chosen so that every contract query shape has a small, hand-checkable answer;
3. one more product that is then evicted (`evicted_at` set), which must vanish from listings and answer 404.

The expected answers are computed from what the publisher returned (Id and PublicationDate at microsecond precision),
never from what the API itself answers, so a wrong API answer cannot make its own expectation.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import update
from sqlalchemy.orm import Session

from auxip.auth import Role
from auxip.catalog.bulk import bulk_load
from auxip.catalog.models import Product
from auxip.catalog.publish import publish_product
from auxip.catalog.records import AttributeValue, ProductRecord
from auxip_testing.api_server import ApiServer, default_config, run_api
from auxip_testing.postgres import PostgresServer

USERNAME = "api-tester"
PASSWORD = "api-tester-password-1"  # noqa: S105 - throwaway user of a temporary catalog
BULK_COUNT = 1100
BULK_PREFIX = "S1__AUX_TEC"
EPOCH_2015 = datetime(2015, 1, 1, tzinfo=UTC)


def _t(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


# (name, productType, platformSerialIdentifier or None, validity start, validity stop or None for open-ended)
FIXED: list[tuple[str, str, str | None, str, str | None]] = [
    ("S1A_OPER_AUX_POEORB_OPOD_20210301T120000_V20210228T225942_20210302T005942.EOF.zip", "AUX_POEORB", "A",
     "20210228T225942", "20210302T005942"),
    ("S1B_OPER_AUX_POEORB_OPOD_20210302T120000_V20210301T225942_20210303T005942.EOF.zip", "AUX_POEORB", "B",
     "20210301T225942", "20210303T005942"),
    ("S1C_OPER_AUX_POEORB_OPOD_20210303T120000_V20210302T225942_20210304T005942.EOF.zip", "AUX_POEORB", "C",
     "20210302T225942", "20210304T005942"),
    ("S1A_OPER_AUX_RESORB_OPOD_20210301T040000_V20210301T010000_20210301T040000.EOF.zip", "AUX_RESORB", "A",
     "20210301T010000", "20210301T040000"),
    ("S1B_OPER_AUX_RESORB_OPOD_20210302T040000_V20210302T010000_20210302T040000.EOF.zip", "AUX_RESORB", "B",
     "20210302T010000", "20210302T040000"),
    ("S1__AUX_WND_V20210301T060000_20210301T120000_G20210301T050000.SAFE.zip", "AUX_WND", None,
     "20210301T060000", "20210301T120000"),
    ("S1__AUX_WND_V20210302T060000_20210302T120000_G20210302T050000.SAFE.zip", "AUX_WND", None,
     "20210302T060000", "20210302T120000"),
    ("S1A_AUX_CAL_V20210301T000000_G20210228T100000.SAFE.zip", "AUX_CAL", "A", "20210301T000000", None),
    ("S1B_AUX_CAL_V20210301T000000_G20210228T110000.SAFE.zip", "AUX_CAL", "B", "20210301T000000", None),
    ("S1A_OPER_MPL_ORBPRE_20210301T000000_20210311T000000_0001.EOF.zip", "MPL_ORBPRE", "A",
     "20210301T000000", "20210311T000000"),
]  # fmt: skip
EVICTED_NAME = "S1A_OPER_AUX_RESORB_OPOD_20210303T040000_V20210303T010000_20210303T040000.EOF.zip"


@dataclass(frozen=True)
class Published:
    record: ProductRecord
    id: uuid.UUID
    publication_date: datetime
    data: bytes | None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def md5(self) -> str:
        return self.record.md5


@dataclass(frozen=True)
class Catalog:
    """What was published, in publication order, and a logged-in HTTP session on the live server."""

    server: ApiServer
    bulk: list[ProductRecord]
    fixed: list[Published]
    evicted: Published
    http: requests.Session

    @property
    def products_url(self) -> str:
        return f"{self.server.service_root}/Products"

    def get(self, query: str = "", path: str = "/Products") -> requests.Response:
        # The query is sent exactly as written (OData literals with quotes, spaces and colons), as clients do.
        url = f"{self.server.service_root}{path}" + (f"?{query}" if query else "")
        return self.http.get(url, timeout=30)

    def by_name(self, name: str) -> Published:
        return next(p for p in self.fixed if p.name == name)

    # Helpers for the test modules (conftest is not importable under --import-mode=importlib).
    @staticmethod
    def odata_ms(value: datetime) -> str:
        return odata_ms(value)

    @staticmethod
    def floor_ms(value: datetime) -> datetime:
        return floor_ms(value)


def content_for(name: str, size: int) -> bytes:
    """A real zip (as AUXIP files are) holding `<name without .zip>`: deterministic bytes, distinct per product.

    Real archives matter to clients: eodag, for one, treats a `.zip` that is not a zip as a loose file and moves it.
    """
    seed = name.encode() + b"\n"
    member = zipfile.ZipInfo(name.removesuffix(".zip"), date_time=(2021, 3, 1, 0, 0, 0))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(member, (seed * (size // len(seed) + 1))[:size])
    return buffer.getvalue()


def fixed_record(name: str, product_type: str, unit: str | None, start: str, stop: str | None, data: bytes):
    begin, end = _t(start), (_t(stop) if stop else None)
    attributes: dict[str, AttributeValue] = {
        "productType": product_type,
        "platformShortName": "SENTINEL-1",
        "beginningDateTime": begin,
    }
    if unit:
        attributes["platformSerialIdentifier"] = unit
    if end:
        attributes["endingDateTime"] = end
    if "ORB" in product_type and product_type.startswith("AUX"):
        # An Integer attribute (orbit files carry one), to check typed Values and Integer lambdas.
        attributes["orbitNumber"] = 36000 + int(begin.strftime("%d")) * 15
    return ProductRecord(
        name=name,
        content_length=len(data),
        checksums={"MD5": hashlib.md5(data, usedforsecurity=False).hexdigest()},
        origin_date=begin + timedelta(hours=1),
        content_date_start=begin,
        content_date_end=end,
        retention=timedelta(days=365),
        attributes=attributes,
        storage_key=f"products/{name}",
    )


def bulk_records() -> list[ProductRecord]:
    records = []
    for index in range(BULK_COUNT):
        start = EPOCH_2015 + timedelta(minutes=index)
        stamp = start.strftime("%Y%m%dT%H%M%S")
        name = f"{BULK_PREFIX}_V{stamp}_G{stamp}.SAFE.zip"
        records.append(
            ProductRecord(
                name=name,
                content_length=10,
                checksums={"MD5": hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()},
                origin_date=start,
                content_date_start=start,
                content_date_end=start + timedelta(hours=1),
                retention=timedelta(days=365),
                attributes={"productType": "AUX_TEC", "platformShortName": "SENTINEL-1"},
                storage_key=f"products/{name}",
            )
        )
    return records


async def _store(server: ApiServer, key: str, data: bytes) -> None:
    async def chunks():
        yield data

    await server.storage.put_stream(key, chunks())


def publish_with_bytes(server: ApiServer, record: ProductRecord, data: bytes) -> Published:
    server.call(_store(server, record.storage_key, data))
    result = publish_product(server.engine, record)
    return Published(record, result.id, result.publication_date, data)


def build_catalog(server: ApiServer) -> Catalog:
    bulk = bulk_records()
    assert bulk_load(server.engine, bulk).inserted == BULK_COUNT
    fixed = []
    for index, (name, product_type, unit, start, stop) in enumerate(FIXED):
        data = content_for(name, 1500 + index * 211)
        fixed.append(publish_with_bytes(server, fixed_record(name, product_type, unit, start, stop, data), data))
    data = content_for(EVICTED_NAME, 999)
    evicted = publish_with_bytes(
        server,
        fixed_record(EVICTED_NAME, "AUX_RESORB", "A", "20210303T010000", "20210303T040000", data),
        data,
    )
    # The rolling archive's eviction marks the row; the API must then hide it everywhere.
    with Session(server.engine) as session, session.begin():
        session.execute(update(Product).where(Product.id == evicted.id).values(evicted_at=datetime.now(UTC)))
    server.add_user(USERNAME, PASSWORD, Role.DOWNLOAD)
    http = requests.Session()
    http.auth = (USERNAME, PASSWORD)
    return Catalog(server, bulk, fixed, evicted, http)


@contextlib.contextmanager
def _serve(data_dir: Path, **overrides: object) -> Iterator[Catalog]:
    with run_api(default_config(data_dir, **overrides), notify_interval=None) as server:
        catalog = build_catalog(server)
        try:
            yield catalog
        finally:
            catalog.http.close()


def fresh_database(postgres: PostgresServer) -> str:
    """A new empty database on the session's cluster (each server migrates and owns its own catalog)."""
    return postgres.create_database("api").sqlalchemy_url


@pytest.fixture(scope="session")
def sqlite_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    with _serve(tmp_path_factory.mktemp("api-sqlite") / "data") as catalog:
        yield catalog


@pytest.fixture(scope="session")
def postgres_catalog(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Catalog]:
    url = fresh_database(postgres)
    with _serve(tmp_path_factory.mktemp("api-postgres") / "data", catalog={"url": url}) as catalog:
        yield catalog


@pytest.fixture
def api_tools() -> SimpleNamespace:
    """Building blocks for tests that start servers of their own (conftest is not importable under importlib)."""
    return SimpleNamespace(
        serve=run_api,
        default_config=default_config,
        publish_with_bytes=publish_with_bytes,
        content_for=content_for,
        fixed_record=fixed_record,
        fresh_database=fresh_database,
        odata_ms=odata_ms,
        credentials=(USERNAME, PASSWORD),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest) -> Catalog:
    """The same assertions on both catalog backends."""
    return request.getfixturevalue(f"{request.param}_catalog")


def odata_ms(value: datetime) -> str:
    """A DateTimeOffset literal at the API's rendered precision (milliseconds, truncated), as clients echo it back."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def floor_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)

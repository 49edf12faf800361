"""A published catalog of realistic Sentinel-1 auxiliary products, per backend (SQLite and real PostgreSQL).

The database is built once per module and backend (publishing goes through the real publication path) and only
read by the tests. Short keys name the products in expectations; their publication order is the list order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from auxip.catalog import ProductRecord, publish_product
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.odata import PRODUCTS, parse_query_options, products_select
from auxip_testing.databases import BACKENDS, database_url


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _record(name: str, length: int, origin: str, start: str, end: str | None, evict: str, **attributes: Any) -> Any:
    content = f"{name}:{length}".encode()
    return ProductRecord(
        name=name,
        content_length=length,
        checksums={"MD5": hashlib.md5(content, usedforsecurity=False).hexdigest()},
        origin_date=utc(origin),
        content_date_start=utc(start),
        content_date_end=utc(end) if end else None,
        eviction_date=utc(evict),
        storage_key=f"aux/{name}",
        attributes=attributes,
    )


# key -> record, in publication order. Attribute types: String, Integer (orbitNumber), Double (dataCoverage),
# DateTimeOffset (beginningDateTime, endingDateTime, processingDate), Boolean (reprocessed).
CATALOG: dict[str, ProductRecord] = {
    "POE": _record(
        "S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF.zip",
        1000,
        "2021-01-01T12:05:00",
        "2020-12-31T22:59:42",
        "2021-01-02T00:59:42",
        "2021-04-01T00:00:00",
        productType="AUX_POEORB",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="A",
        processingCenter="OPOD",
        timeliness="Nominal",
        orbitNumber=35000,
        dataCoverage=99.5,
        reprocessed=False,
        beginningDateTime=utc("2020-12-31T22:59:42"),
        endingDateTime=utc("2021-01-02T00:59:42"),
        processingDate=utc("2021-01-01T12:00:00"),
    ),
    "RES": _record(
        "S1B_OPER_AUX_RESORB_OPOD_20210101T080000_V20210101T040000_20210101T071000.EOF.zip",
        2000,
        "2021-01-01T08:03:00",
        "2021-01-01T04:00:00",
        "2021-01-01T07:10:00",
        "2021-01-11T00:00:00",
        productType="AUX_RESORB",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="B",
        processingCenter="OPOD",
        timeliness="Fast",
        orbitNumber=24000,
        dataCoverage=87.25,
        reprocessed=False,
        beginningDateTime=utc("2021-01-01T04:00:00"),
        endingDateTime=utc("2021-01-01T07:10:00"),
        processingDate=utc("2021-01-01T08:00:00"),
    ),
    "GONE": _record(
        "S1A_OPER_AUX_POEORB_OPOD_20201201T120000_V20201130T225942_20201202T005942.EOF.zip",
        1000,
        "2020-12-01T12:05:00",
        "2020-11-30T22:59:42",
        "2020-12-02T00:59:42",
        "2021-03-01T00:00:00",
        productType="AUX_POEORB",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="A",
        processingCenter="OPOD",
        orbitNumber=34500,
        reprocessed=False,
    ),
    "CAL": _record(
        "S1A_AUX_CAL_V20140908T000000_G20190626T100201.SAFE.zip",
        3000,
        "2019-06-26T10:05:00",
        "2014-09-08T00:00:00",
        None,
        "2030-01-01T00:00:00",
        productType="AUX_CAL",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="A",
        instrumentShortName="SAR",
        processorVersion="3.10",
        dataCoverage=100.0,
        reprocessed=True,
        beginningDateTime=utc("2014-09-08T00:00:00"),
        processingDate=utc("2019-06-26T10:02:01"),
    ),
    "WND": _record(
        "S1__AUX_WND_V20160423T120000_G20160422T060059.SAFE.zip",
        2000,
        "2016-04-22T06:10:00",
        "2016-04-23T12:00:00",
        None,
        "2026-07-22T00:00:00",
        productType="AUX_WND",
        platformShortName="SENTINEL-1",
        instrumentShortName="SAR",
        processorVersion="3.10",
        processingCenter="ECMWF",
        reprocessed=False,
        beginningDateTime=utc("2016-04-23T12:00:00"),
        processingDate=utc("2016-04-22T06:00:59"),
    ),
    "PRE": _record(
        "S1A_OPER_MPL_ORBPRE_20210101T000000_20210108T000000_0001.EOF.zip",
        1000,
        "2021-01-01T00:10:00",
        "2021-01-01T00:00:00",
        "2021-01-08T00:00:00",
        "2021-02-01T00:00:00",
        productType="MPL_ORBPRE",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="A",
        orbitNumber=35001,
        dataCoverage=-1.5,
        reprocessed=False,
        beginningDateTime=utc("2021-01-01T00:00:00"),
        endingDateTime=utc("2021-01-08T00:00:00"),
        processingDate=utc("2021-01-01T00:00:00.123456"),
    ),
    "WAV": _record(
        "S1B_AUX_WAV_V20210101T000000_20210102T000000_G20210101T010000.SAFE.zip",
        4000,
        "2021-01-01T01:30:00",
        "2021-01-01T00:00:00",
        "2021-01-02T00:00:00",
        "2021-04-01T00:00:00",
        productType="AUX_WAV",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="B",
        instrumentShortName="SAR",
        processorVersion="3.20",
        dataCoverage=50.0,
        reprocessed=True,
        beginningDateTime=utc("2021-01-01T00:00:00"),
        processingDate=utc("2021-01-01T01:00:00"),
    ),
    "wav": _record(
        "S1B_aux_wav_V20210102T000000_20210103T000000_G20210102T010000.SAFE.zip",
        500,
        "2021-01-02T01:30:00",
        "2021-01-02T00:00:00",
        "2021-01-03T00:00:00",
        "2021-04-02T00:00:00",
        productType="aux_wav",
        platformShortName="SENTINEL-1",
        platformSerialIdentifier="b",
        processingDate=utc("2021-01-02T01:00:00"),
    ),
}
EVICTED = frozenset({"GONE"})
KEY_OF_NAME = {record.name: key for key, record in CATALOG.items()}


@dataclass(frozen=True)
class Catalog:
    engine: Engine
    ids: Mapping[str, uuid.UUID]
    publication_dates: Mapping[str, datetime]

    def query(self, params: Mapping[str, str], page_cap: int = 1000) -> tuple[list[str], int | None]:
        """(keys of the products on the page, in order; `@odata.count` or None)."""
        options = parse_query_options(params, PRODUCTS, page_cap=page_cap)
        page, count = products_select(options)
        with Session(self.engine) as session:
            names = [row.name for row in session.execute(page)]
            total = session.execute(count).scalar_one() if count is not None else None
        return [KEY_OF_NAME[name] for name in names], total

    def keys(self, filter_text: str, orderby: str = "PublicationDate asc") -> list[str]:
        return self.query({"$filter": filter_text, "$orderby": orderby})[0]


def _database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request, tmp_path, "odata")


def build_catalog(url: str) -> Catalog:
    """Migrate the database at `url`, publish CATALOG through the real publication path, evict GONE."""
    upgrade(url)
    engine = make_engine(url)
    ids = {key: publish_product(engine, record).id for key, record in CATALOG.items()}
    with engine.begin() as conn:
        evicted = [ids[key] for key in EVICTED]
        conn.execute(update(Product).where(Product.id.in_(evicted)).values(evicted_at=utc("2021-03-01T00:00:00")))
    with Session(engine) as session:
        dates = dict(session.execute(select(Product.id, Product.publication_date)).tuples().all())
    return Catalog(engine, ids, {key: dates[ids[key]] for key in CATALOG})


@pytest.fixture(scope="module", params=BACKENDS)
def catalog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """The CATALOG products published (GONE then evicted) on the backend of the parameter."""
    urls = _database_url(request, tmp_path_factory.mktemp("odata"))
    url = next(urls)
    try:
        built = build_catalog(url)
        yield built
        built.engine.dispose()
    finally:
        next(urls, None)

"""bulk_load: thousands of records, strictly increasing dates after what is there, existing names skipped; the
PostgreSQL COPY path writes exactly what the executemany path writes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from auxip.catalog import BulkLoadResult, ProductRecord, bulk_load, publish_product
from auxip.catalog.bulk import time_ordered_id
from auxip.catalog.models import Attribute, Checksum, Product
from auxip_testing.sample_products import sample_records

RecordFactory = Callable[..., ProductRecord]


@pytest.mark.slow
def test_bulk_load_5000_with_increasing_dates_and_skips(engine: Engine, make_record: RecordFactory) -> None:
    before = publish_product(engine, make_record(10))  # already published: must be skipped, not duplicated

    records = [make_record(index) for index in range(5000)]
    # A repeat inside the input is skipped too (first one wins).
    result = bulk_load(engine, [*records, make_record(42)], batch_size=700)
    assert result == BulkLoadResult(inserted=4999, skipped=2)

    with engine.connect() as conn:
        rows = conn.execute(select(Product.name, Product.publication_date).order_by(Product.publication_date)).all()
        assert conn.execute(select(func.count()).select_from(Checksum)).scalar_one() == 2 * 5000
        assert conn.execute(select(func.count()).select_from(Attribute)).scalar_one() == 4 * 5000
        orbit = conn.execute(
            select(Attribute.value_integer)
            .join(Product)
            .where(Product.name == records[4321].name, Attribute.name == "orbitNumber")
        ).scalar_one()
    assert orbit == 4321
    assert len(rows) == 5000
    assert rows[0] == (records[10].name, before.publication_date)
    # Input order is publication order, every date strictly later than the previous one and than what existed.
    loaded = [name for name, _ in rows[1:]]
    assert loaded == [record.name for record in records if record.name != records[10].name]
    dates = [date for _, date in rows]
    assert all(earlier < later for earlier, later in itertools.pairwise(dates))

    # Reloading the same input (a restarted restore) inserts nothing; new names go after everything.
    again = bulk_load(engine, [*records[:1000], make_record(9000)], batch_size=300)
    assert again == BulkLoadResult(inserted=1, skipped=1000)
    after = publish_product(engine, make_record(9001))
    with engine.connect() as conn:
        newest = conn.execute(select(Product.name).order_by(Product.publication_date.desc()).limit(2)).scalars().all()
    assert newest == [make_record(9001).name, make_record(9000).name]
    assert after.publication_date > dates[-1]


def test_bulk_load_rejects_bad_batch_size(engine: Engine) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        bulk_load(engine, [], batch_size=0)


def test_bulk_load_of_nothing(engine: Engine) -> None:
    assert bulk_load(engine, []) == BulkLoadResult(inserted=0, skipped=0)


# --- COPY fast path (PostgreSQL) against the executemany path -------------------------------------------------------

TableRows = list[dict[str, Any]]


def _tables(engine: Engine) -> tuple[TableRows, TableRows, TableRows]:
    """Every row of the three product tables, through the ORM column types (aware UTC datetimes, UUIDs)."""
    with engine.connect() as conn:
        products = conn.execute(select(Product.__table__).order_by(Product.publication_date)).mappings().all()
        checksums = conn.execute(select(Checksum.__table__)).mappings().all()
        attributes = conn.execute(select(Attribute.__table__)).mappings().all()
    return [dict(row) for row in products], [dict(row) for row in checksums], [dict(row) for row in attributes]


def _relative(
    tables: tuple[TableRows, TableRows, TableRows], records: list[ProductRecord]
) -> tuple[TableRows, TableRows, TableRows]:
    """The tables with Ids replaced by names and dates derived from the PublicationDate (eviction after a retention,
    default checksum date) replaced by offsets to it, so two loads of one input compare equal although each load
    draws its own Ids and clock dates."""
    products, checksums, attributes = tables
    by_name = {record.name: record for record in records}
    name_of = {row["id"]: row["name"] for row in products}
    published = {row["id"]: row["publication_date"] for row in products}
    relative_products = [
        {
            **row,
            "id": None,
            "publication_date": None,
            "eviction_date": row["eviction_date"]
            if by_name[row["name"]].eviction_date is not None
            else row["eviction_date"] - row["publication_date"],
        }
        for row in products
    ]
    relative_checksums = sorted(
        (
            {
                **row,
                "product_id": name_of[row["product_id"]],
                "checksum_date": row["checksum_date"]
                if by_name[name_of[row["product_id"]]].checksum_date is not None
                else row["checksum_date"] - published[row["product_id"]],
            }
            for row in checksums
        ),
        key=lambda row: (row["product_id"], row["algorithm"]),
    )
    relative_attributes = sorted(
        ({**row, "product_id": name_of[row["product_id"]]} for row in attributes),
        key=lambda row: (row["product_id"], row["name"]),
    )
    return relative_products, relative_checksums, relative_attributes


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Product))  # checksums and attributes go with it (ON DELETE CASCADE)


def varied_records(make_record: RecordFactory) -> list[ProductRecord]:
    """Every attribute type and edge the writers must carry identically, plus realistic sample products."""
    plus_three = timezone(timedelta(hours=3))
    special = [
        make_record(
            1,
            attributes={
                "productType": "AUX_WND ünïcode\ttab",
                "orbitNumber": 2**40 + 7,
                "negative": -5,
                "cloudCover": 0.1234567890123,
                "tiny": 5e-324,
                "valid": True,
                "invalid": False,
                "processingDate": datetime(2026, 4, 5, 8, 9, 10, 999999, tzinfo=plus_three),
            },
            checksums={"MD5": "ABCDEF0123456789ABCDEF0123456789", "SHA256": "00" * 32},
            checksum_date=datetime(2026, 2, 1, 0, 0, 0, 42, tzinfo=plus_three),
            content_type="application/zip",
        ),
        make_record(2, attributes={}, content_date_end=None, eviction_date=None, retention=timedelta(days=90)),
        make_record(3, content_length=0, content=b""),
    ]
    return [*special, *sample_records(300, seed=7)]


@pytest.mark.parametrize("batch_size", [1, 64])
def test_fast_path_writes_the_same_rows_as_executemany(
    engine: Engine, make_record: RecordFactory, batch_size: int
) -> None:
    records = varied_records(make_record)
    slow = bulk_load(engine, records, batch_size=batch_size, method="executemany")
    slow_tables = _tables(engine)
    _clear(engine)
    fast = bulk_load(engine, records, batch_size=batch_size)
    fast_tables = _tables(engine)

    assert slow == fast == BulkLoadResult(inserted=len(records), skipped=0)
    assert len(fast_tables[0]) == len(records)
    assert len(fast_tables[2]) == sum(len(record.attributes) for record in records)
    assert _relative(fast_tables, records) == _relative(slow_tables, records)
    # Spot checks against the input, so "equal" cannot mean "equally wrong".
    by_name = {row["name"]: row for row in fast_tables[0]}
    first = by_name[records[0].name]
    typed = {
        row["name"]: row for row in fast_tables[2] if row["product_id"] == first["id"] and row["name"] != "productType"
    }
    assert typed["orbitNumber"]["value_integer"] == 2**40 + 7
    assert typed["cloudCover"]["value_double"] == 0.1234567890123
    assert typed["tiny"]["value_double"] == 5e-324
    assert (typed["valid"]["value_boolean"], typed["invalid"]["value_boolean"]) == (True, False)
    assert typed["processingDate"]["value_datetime"] == datetime(2026, 4, 5, 5, 9, 10, 999999, tzinfo=UTC)
    assert typed["processingDate"]["value_type"] == "DateTimeOffset"
    md5 = next(row for row in fast_tables[1] if row["product_id"] == first["id"] and row["algorithm"] == "MD5")
    assert md5["value"] == "abcdef0123456789abcdef0123456789"
    retained = by_name[records[1].name]
    assert retained["eviction_date"] == retained["publication_date"] + timedelta(days=90)
    assert retained["content_date_end"] is None


def test_fast_path_dates_increase_and_existing_names_are_skipped(engine: Engine, make_record: RecordFactory) -> None:
    records = varied_records(make_record)
    before = publish_product(engine, records[5])
    result = bulk_load(engine, [*records, records[7]], batch_size=50)
    assert result == BulkLoadResult(inserted=len(records) - 1, skipped=2)

    products = _tables(engine)[0]
    assert [row["name"] for row in products] == [records[5].name] + [
        record.name for record in records if record.name != records[5].name
    ]
    dates = [row["publication_date"] for row in products]
    assert all(earlier < later for earlier, later in itertools.pairwise(dates))
    assert products[0]["id"] == before.id
    # Bulk Ids are time-ordered (UUIDv7), in PublicationDate order.
    bulk_ids = [row["id"] for row in products[1:]]
    assert all(product_id.version == 7 for product_id in bulk_ids)
    assert bulk_ids == sorted(bulk_ids)

    assert bulk_load(engine, records[:20], batch_size=7) == BulkLoadResult(inserted=0, skipped=20)
    after = publish_product(engine, make_record(9999))
    assert after.publication_date > dates[-1]


def test_time_ordered_id_follows_the_date() -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, 999_998, tzinfo=UTC)
    dates = [start + timedelta(microseconds=step) for step in range(2500)]
    ids = [time_ordered_id(date) for date in dates]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert ids[0].version == 7
    assert ids[0].variant == uuid.RFC_4122
    assert ids[0].int >> 80 == int(start.timestamp() * 1000)

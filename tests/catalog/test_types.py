"""Aware UTC datetimes with microseconds round-trip on SQLite, and records refuse ambiguous input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from auxip.catalog import ProductRecord
from auxip.catalog.records import value_type_of
from auxip.catalog.types import UTCDateTime

RecordFactory = Callable[..., ProductRecord]


def test_sqlite_round_trips_aware_utc_with_microseconds(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/types.db")
    metadata = MetaData()
    table = Table("t", metadata, Column("at", UTCDateTime, primary_key=True))
    metadata.create_all(engine)
    plus_two = timezone(timedelta(hours=2))
    written = [
        datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 14, 0, 0, 2, tzinfo=plus_two),  # = 12:00:00.000002Z
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    with engine.begin() as conn:
        conn.execute(insert(table), [{"at": value} for value in written])
        read = conn.execute(select(table.c.at).order_by(table.c.at)).scalars().all()
        later = (
            conn.execute(select(table.c.at).where(table.c.at > datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)))
            .scalars()
            .all()
        )
    assert read == [
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 2, tzinfo=UTC),
    ]
    assert all(value.tzinfo is UTC for value in read)
    # Comparisons are in time order, microseconds included, whatever offset the input had.
    assert later == [datetime(2026, 3, 1, 12, 0, 0, 2, tzinfo=UTC)]
    engine.dispose()


def test_naive_datetime_is_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/naive.db")
    metadata = MetaData()
    table = Table("t", metadata, Column("at", UTCDateTime))
    metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(StatementError, match="timezone-aware"):
        conn.execute(insert(table).values(at=datetime(2026, 1, 1)))
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", "String"),
        (7, "Integer"),
        (2.5, "Double"),
        (True, "Boolean"),
        (datetime(2026, 1, 1, tzinfo=UTC), "DateTimeOffset"),
    ],
)
def test_value_type_of(value: object, expected: str) -> None:
    assert value_type_of(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"checksums": {"SHA256": "ab"}}, "MD5 checksum is required"),
        ({"content_length": -1}, "content_length must be >= 0"),
        ({"retention": timedelta(days=1)}, "exactly one of eviction_date and retention"),
        ({"origin_date": datetime(2026, 1, 1)}, "origin_date must be timezone-aware"),
        ({"content_date_end": datetime(2000, 1, 1, tzinfo=UTC)}, "content_date_end is before"),
        ({"attributes": {"bad": [1]}}, "unsupported attribute value type list"),
        ({"name": ""}, "1 to 255 characters"),
    ],
)
def test_record_validation(make_record: RecordFactory, overrides: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make_record(1, **overrides)


def test_retention_counts_from_publication(make_record: RecordFactory) -> None:
    record: ProductRecord = make_record(1, eviction_date=None, retention=timedelta(days=30))
    published = datetime(2026, 5, 1, tzinfo=UTC)
    assert record.eviction_after(published) == datetime(2026, 5, 31, tzinfo=UTC)

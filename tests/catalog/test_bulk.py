"""bulk_load: thousands of records, strictly increasing dates after what is there, existing names skipped."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select

from auxip.catalog import BulkLoadResult, ProductRecord, bulk_load, publish_product
from auxip.catalog.models import Attribute, Checksum, Product

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

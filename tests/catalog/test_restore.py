"""restore_products: original Ids and PublicationDates kept, idempotent rerun, conflicts refused, clock advanced."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select

from auxip.catalog import BulkLoadResult, ProductRecord, publish_product
from auxip.catalog.clock import RESOLUTION
from auxip.catalog.models import Attribute, Checksum, Product, PublicationClock
from auxip.catalog.restore import RestoreConflictError, RestoredProduct, restore_products
from auxip_testing.sample_products import sample_records

RecordFactory = Callable[..., ProductRecord]

# Dates of a catalog that was running before the disaster: in the past, microsecond precision, not contiguous.
ORIGINAL_START = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _originals(records: list[ProductRecord]) -> list[RestoredProduct]:
    return [
        RestoredProduct(
            record=record, id=uuid.uuid4(), publication_date=ORIGINAL_START + timedelta(seconds=index, microseconds=7)
        )
        for index, record in enumerate(records)
    ]


def _products(engine: Engine) -> dict[uuid.UUID, tuple[str, datetime, datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(select(Product.id, Product.name, Product.publication_date, Product.eviction_date)).all()
    return {row.id: (row.name, row.publication_date, row.eviction_date) for row in rows}


def _clock(engine: Engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(select(PublicationClock.last_publication_date)).scalar_one()


def _all_rows(engine: Engine) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as conn:
        return tuple(
            [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns)).all()]
            for table in (Product.__table__, Checksum.__table__, Attribute.__table__)
        )


def test_restore_keeps_ids_and_dates(engine: Engine) -> None:
    originals = _originals(list(sample_records(250, seed=3)))
    assert restore_products(engine, originals, batch_size=100) == BulkLoadResult(inserted=250, skipped=0)

    products = _products(engine)
    assert len(products) == 250
    for original in originals:
        name, publication_date, eviction_date = products[original.id]
        assert name == original.record.name
        assert publication_date == original.publication_date
        # sample records carry a retention: the eviction date follows the ORIGINAL publication date.
        assert original.record.retention is not None
        assert eviction_date == original.publication_date + original.record.retention
    with engine.connect() as conn:
        checksum_dates = dict(conn.execute(select(Checksum.product_id, Checksum.checksum_date)).tuples().all())
        attribute_count = conn.execute(select(func.count()).select_from(Attribute)).scalar_one()
    assert checksum_dates == {original.id: original.publication_date for original in originals}
    assert attribute_count == sum(len(original.record.attributes) for original in originals)


def test_fast_path_restores_the_same_rows_as_executemany(engine: Engine) -> None:
    originals = _originals(list(sample_records(300, seed=11)))
    restore_products(engine, originals, batch_size=64, method="executemany")
    slow = _all_rows(engine)
    with engine.begin() as conn:
        conn.execute(delete(Product))
    restore_products(engine, originals, batch_size=64)
    fast = _all_rows(engine)
    assert [len(table) for table in fast] == [300, 300, sum(len(o.record.attributes) for o in originals)]
    assert fast == slow


def test_rerun_skips_restored_ids(engine: Engine) -> None:
    originals = _originals(list(sample_records(40, seed=5)))
    assert restore_products(engine, originals[:25], batch_size=10) == BulkLoadResult(inserted=25, skipped=0)
    # A restarted restore (and a repeat inside the input) inserts only what is missing.
    rerun = restore_products(engine, [*originals, originals[30]], batch_size=10)
    assert rerun == BulkLoadResult(inserted=15, skipped=26)
    assert {product_id: row[1] for product_id, row in _products(engine).items()} == {
        original.id: original.publication_date for original in originals
    }


def test_clock_moves_past_the_newest_restored_date(engine: Engine, make_record: RecordFactory) -> None:
    # Restored dates later than now (a clock that ran ahead on the lost system) must still be overtaken.
    future = datetime.now(UTC) + timedelta(days=2)
    originals = [
        RestoredProduct(record=make_record(index), id=uuid.uuid4(), publication_date=future - timedelta(seconds=index))
        for index in range(5)
    ]
    restore_products(engine, originals, batch_size=2)
    assert _clock(engine) == future

    published = publish_product(engine, make_record(100))
    assert published.publication_date > future
    # The clock's next slot after the newest restored date (restored dates need not be on the clock's grid, so at
    # most one rounding step plus one step later), not the wall clock two days behind it.
    assert published.publication_date - future < 2 * RESOLUTION


def test_old_restored_dates_do_not_move_the_clock_back(engine: Engine, make_record: RecordFactory) -> None:
    first = publish_product(engine, make_record(100))
    restore_products(engine, _originals([make_record(index) for index in range(3)]))
    assert _clock(engine) == first.publication_date
    second = publish_product(engine, make_record(101))
    assert second.publication_date > first.publication_date


def test_same_name_with_another_id_is_refused(engine: Engine, make_record: RecordFactory) -> None:
    published = publish_product(engine, make_record(1))
    originals = _originals([make_record(0), make_record(1), make_record(2)])
    with pytest.raises(RestoreConflictError, match=r"already exists with Id") as caught:
        restore_products(engine, originals)
    assert caught.value.name == make_record(1).name
    assert caught.value.existing_id == published.id
    assert caught.value.restored_id == originals[1].id
    # The failing batch is rolled back as a whole.
    assert set(_products(engine)) == {published.id}


def test_same_id_with_another_name_is_refused(engine: Engine, make_record: RecordFactory) -> None:
    (original,) = _originals([make_record(0)])
    restore_products(engine, [original])
    renamed = RestoredProduct(record=make_record(1), id=original.id, publication_date=original.publication_date)
    with pytest.raises(RestoreConflictError, match=r"already belongs to product") as caught:
        restore_products(engine, [renamed])
    assert caught.value.existing_name == make_record(0).name


def test_conflict_inside_the_input_is_refused(engine: Engine, make_record: RecordFactory) -> None:
    one, other = _originals([make_record(0), make_record(0)])
    with pytest.raises(RestoreConflictError):
        restore_products(engine, [one, other])
    assert _products(engine) == {}


def test_naive_publication_date_is_rejected(make_record: RecordFactory) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RestoredProduct(record=make_record(0), id=uuid.uuid4(), publication_date=datetime(2026, 1, 1))

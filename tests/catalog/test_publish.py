"""publish_product: values as published, typed attributes, idempotent and conflicting republication, the clock."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from auxip.catalog import ProductConflictError, ProductRecord, publish_product
from auxip.catalog.clock import lock_clock, reserve_publication_dates
from auxip.catalog.models import Attribute, Product, PublicationClock

RecordFactory = Callable[..., ProductRecord]


def _load(engine: Engine, product_id: uuid.UUID) -> Product:
    with Session(engine, expire_on_commit=False) as session:
        return session.execute(
            select(Product)
            .where(Product.id == product_id)
            .options(selectinload(Product.checksums), selectinload(Product.attributes))
        ).scalar_one()


def test_publish_stores_every_field(engine: Engine, make_record: RecordFactory) -> None:
    record = make_record(3, checksum_date=datetime(2026, 2, 1, 0, 0, 0, 42, tzinfo=UTC))
    before = datetime.now(UTC)
    published = publish_product(engine, record)
    after = datetime.now(UTC)

    assert published.created is True
    assert before <= published.publication_date <= after
    product = _load(engine, published.id)
    assert product.name == record.name
    assert product.content_type == "application/octet-stream"
    assert product.content_length == record.content_length
    assert product.origin_date == record.origin_date
    assert product.publication_date == published.publication_date
    assert product.eviction_date == record.eviction_date
    assert product.content_date_start == record.content_date_start
    assert product.content_date_end == record.content_date_end
    assert product.storage_key == record.storage_key
    assert product.evicted is False
    assert [(c.algorithm, c.value, c.checksum_date) for c in product.checksums] == [
        ("MD5", record.checksums["MD5"], record.checksum_date),
        ("SHA256", record.checksums["SHA256"], record.checksum_date),
    ]


def test_typed_attributes_round_trip(engine: Engine, make_record: RecordFactory) -> None:
    attributes = {
        "productType": "AUX_WND",
        "orbitNumber": 2**40 + 7,  # beyond 32 bits: the column is BIGINT
        "cloudCover": 0.1234567890123,
        "processingDate": datetime(2026, 4, 5, 8, 9, 10, 999999, tzinfo=timezone(timedelta(hours=-3))),
        "isReprocessed": False,
    }
    published = publish_product(engine, make_record(1, attributes=attributes))

    product = _load(engine, published.id)
    stored = {a.name: (a.value_type, a.value) for a in product.attributes}
    assert stored == {
        "cloudCover": ("Double", 0.1234567890123),
        "isReprocessed": ("Boolean", False),
        "orbitNumber": ("Integer", 2**40 + 7),
        "processingDate": ("DateTimeOffset", datetime(2026, 4, 5, 11, 9, 10, 999999, tzinfo=UTC)),
        "productType": ("String", "AUX_WND"),
    }
    for attribute in product.attributes:
        assert type(attribute.value) is type(attributes[attribute.name])

    # Typed comparisons in SQL (what the $filter lambdas compile to) hit the right column.
    with Session(engine) as session:
        by_integer = (
            session.execute(
                select(Attribute.product_id).where(Attribute.name == "orbitNumber", Attribute.value_integer > 2**40)
            )
            .scalars()
            .all()
        )
        by_datetime = (
            session.execute(
                select(Attribute.product_id).where(
                    Attribute.name == "processingDate",
                    Attribute.value_datetime >= datetime(2026, 4, 5, 11, 9, 10, 999999, tzinfo=UTC),
                )
            )
            .scalars()
            .all()
        )
        by_boolean = (
            session.execute(
                select(Attribute.product_id).where(
                    Attribute.name == "isReprocessed", Attribute.value_boolean.is_(False)
                )
            )
            .scalars()
            .all()
        )
    assert by_integer == by_datetime == by_boolean == [published.id]


def test_retention_sets_eviction_from_publication(engine: Engine, make_record: RecordFactory) -> None:
    record = make_record(1, eviction_date=None, retention=timedelta(days=7))
    published = publish_product(engine, record)
    assert _load(engine, published.id).eviction_date == published.publication_date + timedelta(days=7)


def test_identical_republication_returns_the_existing_product(engine: Engine, make_record: RecordFactory) -> None:
    first = publish_product(engine, make_record(1))
    publish_product(engine, make_record(2))
    # Same name and bytes; other metadata differing (a retry with a new origin date) does not matter.
    again = publish_product(engine, make_record(1, origin_date=datetime(2030, 1, 1, tzinfo=UTC)))

    assert (again.id, again.publication_date, again.created) == (first.id, first.publication_date, False)
    with Session(engine) as session:
        assert session.execute(select(Product.name)).scalars().all().count(make_record(1).name) == 1
        assert _load(engine, first.id).origin_date == make_record(1).origin_date
        clock = session.execute(select(PublicationClock.last_publication_date)).scalar_one()
    # The idempotent call reserved no date.
    assert clock > first.publication_date


def test_conflicting_republication_raises_and_keeps_the_original(engine: Engine, make_record: RecordFactory) -> None:
    first = publish_product(engine, make_record(1))
    with pytest.raises(ProductConflictError, match="already published with MD5") as excinfo:
        publish_product(engine, make_record(1, content=b"other bytes"))
    assert excinfo.value.name == make_record(1).name

    product = _load(engine, first.id)
    assert product.publication_date == first.publication_date
    assert {c.algorithm: c.value for c in product.checksums} == make_record(1).checksums
    with Session(engine) as session:
        assert session.execute(select(Product.id)).scalars().all() == [first.id]


def test_publish_within_a_caller_session(engine: Engine, make_record: RecordFactory) -> None:
    with Session(engine) as session, session.begin():
        published = publish_product(session, make_record(1))
    assert _load(engine, published.id).publication_date == published.publication_date


def test_sequential_publications_strictly_increase(engine: Engine, make_record: RecordFactory) -> None:
    dates = [publish_product(engine, make_record(index)).publication_date for index in range(30)]
    assert all(earlier < later for earlier, later in itertools.pairwise(dates))


def test_clock_never_goes_back_even_if_wall_time_does(engine: Engine) -> None:
    future = datetime(2099, 1, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        last = lock_clock(session)
        assert reserve_publication_dates(session, last, count=3, now=lambda: future) == [
            future,
            future + timedelta(milliseconds=1),
            future + timedelta(milliseconds=2),
        ]
    with Session(engine) as session, session.begin():
        last = lock_clock(session)
        assert last == future + timedelta(milliseconds=2)
        # Wall time behind the clock (NTP step, another host): the next date is still later.
        (date,) = reserve_publication_dates(session, last, now=lambda: datetime(2020, 1, 1, tzinfo=UTC))
        assert date == future + timedelta(milliseconds=3)


def test_dates_are_whole_milliseconds_so_the_rendered_value_is_exact(engine: Engine) -> None:
    # The API renders ...ss.sssZ and pollers send it back in `gt`: a finer stored date would re-match itself.
    wall = datetime(2099, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        last = lock_clock(session)
        dates = reserve_publication_dates(session, last, count=2, now=lambda: wall)
    assert dates == [
        datetime(2099, 1, 1, 0, 0, 0, 124000, tzinfo=UTC),
        datetime(2099, 1, 1, 0, 0, 0, 125000, tzinfo=UTC),
    ]

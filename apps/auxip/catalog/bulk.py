"""Batched loading for benchmarks and restores.

Each batch is one transaction: lock the publication clock, drop the names already present (and repeats inside the
batch: first one wins), reserve one consecutive microsecond per remaining record, then insert products, checksums
and attributes with one executemany each. SQLAlchemy 2 sends those as multi-row INSERTs ("insertmanyvalues") on
both psycopg and sqlite, which is within a small factor of COPY for rows this narrow, without COPY's type-adaptation
code and its second code path to keep in sync with `publish_product`.

Batches keep the clock lock short, so live publications interleave with a long restore; dates stay strictly
increasing across batches and publishers because every batch goes through the same clock.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from auxip.catalog.clock import lock_clock, reserve_publication_dates
from auxip.catalog.models import Attribute, Checksum, Product
from auxip.catalog.records import ProductRecord
from auxip.catalog.rows import attribute_rows, checksum_rows, product_row


@dataclass(frozen=True, slots=True)
class BulkLoadResult:
    inserted: int
    skipped: int


def bulk_load(engine: Engine, records: Iterable[ProductRecord], batch_size: int = 1000) -> BulkLoadResult:
    """Publish `records` in batches; names already in the catalog are skipped (not compared, not updated)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inserted = skipped = 0
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, batch_size)):
        with Session(engine) as session, session.begin():
            count = _load_batch(session, batch)
        inserted += count
        skipped += len(batch) - count
    return BulkLoadResult(inserted=inserted, skipped=skipped)


def _load_batch(session: Session, batch: list[ProductRecord]) -> int:
    last = lock_clock(session)
    names = {record.name for record in batch}
    present = set(session.execute(select(Product.name).where(Product.name.in_(names))).scalars())
    fresh: list[ProductRecord] = []
    for record in batch:
        if record.name not in present:
            present.add(record.name)
            fresh.append(record)
    if not fresh:
        return 0

    dates = reserve_publication_dates(session, last, count=len(fresh))
    products: list[dict[str, Any]] = []
    checksums: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    for record, publication_date in zip(fresh, dates, strict=True):
        product_id = uuid.uuid4()
        products.append(product_row(record, product_id, publication_date))
        checksums.extend(checksum_rows(record, product_id, publication_date))
        attributes.extend(attribute_rows(record, product_id))
    session.execute(insert(Product), products)
    session.execute(insert(Checksum), checksums)
    if attributes:
        session.execute(insert(Attribute), attributes)
    return len(fresh)

"""Batched loading for benchmarks and large imports.

Each batch is one transaction: lock the publication clock, drop the names already present (and repeats inside the
batch: first one wins), reserve one consecutive microsecond per remaining record, then write products, checksums
and attributes (`auxip.catalog.writers`: binary COPY on PostgreSQL with psycopg 3, multi-row INSERTs elsewhere).
Checking names under the clock lock is race-free because every writer of `product` takes that lock first.

Batches keep the clock lock short, so live publications interleave with a long load; dates stay strictly
increasing across batches and publishers because every batch goes through the same clock. A disaster-recovery
restore, which must keep the original Ids and PublicationDates, is `auxip.catalog.restore.restore_products`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from auxip.catalog.clock import lock_clock, reserve_publication_dates
from auxip.catalog.models import Product
from auxip.catalog.records import ProductRecord
from auxip.catalog.writers import LoadMethod, ProductRow, batched, write_products

_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def time_ordered_id(publication_date: datetime) -> uuid.UUID:
    """A UUIDv7 (RFC 9562) whose order is the PublicationDate order: milliseconds in unix_ts_ms, the microseconds
    within the millisecond in rand_a (the RFC's "increased clock precision" method), 62 random bits in rand_b.

    Why not uuid4: product_id leads the attribute and checksum primary keys and ends the five attribute indexes, so
    random Ids scatter every insert over those ~6 GB of btrees (at 1M products) and a large load becomes random
    I/O; increasing Ids append at the right edge of each key range and keep the hot pages in cache. The Id reveals
    only its PublicationDate, which is public anyway, and stays unique through the 62 random bits.
    """
    micros = (publication_date - _UNIX_EPOCH) // _MICROSECOND
    millis, sub_millis = divmod(micros, 1000)
    rand_b = secrets.randbits(62)
    value = (millis << 80) | (0x7 << 76) | (sub_millis << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


@dataclass(frozen=True, slots=True)
class BulkLoadResult:
    inserted: int
    skipped: int


def bulk_load(
    engine: Engine, records: Iterable[ProductRecord], batch_size: int = 1000, *, method: LoadMethod = "auto"
) -> BulkLoadResult:
    """Publish `records` in batches; names already in the catalog are skipped (not compared, not updated).

    `method="executemany"` forces the portable write path (for comparisons); the default picks the fastest one.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inserted = skipped = 0
    for batch in batched(records, batch_size):
        with Session(engine) as session, session.begin():
            count = _load_batch(session, batch, method)
        inserted += count
        skipped += len(batch) - count
    return BulkLoadResult(inserted=inserted, skipped=skipped)


def _load_batch(session: Session, batch: list[ProductRecord], method: LoadMethod) -> int:
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
    rows: list[ProductRow] = [
        (record, time_ordered_id(publication_date), publication_date)
        for record, publication_date in zip(fresh, dates, strict=True)
    ]
    write_products(session, rows, method)
    return len(fresh)

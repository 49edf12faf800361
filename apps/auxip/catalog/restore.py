"""Disaster-recovery restore: re-insert products with their ORIGINAL Id and PublicationDate.

Why dates are kept: pollers hold `PublicationDate gt <cursor>` positions taken from the lost catalog. Giving restored
products new (later) dates would make every poller download the whole catalog again; giving them their own dates
lets each poller resume exactly where it stopped.

Per batch, one transaction (like `bulk_load`):
1. lock the publication clock, so no publisher runs in the middle of the batch;
2. look up the batch's Ids and Names: a product whose Id is present with the same Name is skipped (a restarted
   restore is idempotent); a Name present under another Id, or an Id present under another Name, raises
   `RestoreConflictError` and rolls the batch back (earlier batches stay committed, so fix the input and rerun);
3. write the rows (COPY on PostgreSQL, see `auxip.catalog.writers`);
4. move the clock to at least the batch's latest PublicationDate, so any publication afterwards gets a strictly
   later date than every restored product (`reserve_publication_dates` takes `max(now, last + 1 µs)`).

Restore before letting pollers in: a restored product is dated in the past, so a poller whose cursor is already
beyond that date does not see it. That is exactly right for products it had already received from the lost
catalog, and the reason a restore should complete before new publications are accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from auxip.catalog.bulk import BulkLoadResult
from auxip.catalog.clock import lock_clock
from auxip.catalog.models import Product, PublicationClock
from auxip.catalog.records import ProductRecord
from auxip.catalog.writers import LoadMethod, ProductRow, batched, write_products


@dataclass(frozen=True, slots=True)
class RestoredProduct:
    """A product as it was in the catalog being restored: its record plus the Id and PublicationDate it had."""

    record: ProductRecord
    id: uuid.UUID
    publication_date: datetime

    def __post_init__(self) -> None:
        if self.publication_date.tzinfo is None or self.publication_date.utcoffset() is None:
            raise ValueError(f"{self.record.name}: publication_date must be timezone-aware")


class RestoreConflictError(Exception):
    """The catalog (or the restore input itself) already has this Name under another Id, or this Id under another
    Name; a restore never replaces or renames a product."""

    def __init__(self, name: str, restored_id: uuid.UUID, existing_id: uuid.UUID, existing_name: str):
        if existing_name != name:
            detail = f"Id {restored_id} already belongs to product {existing_name!r}"
        else:
            detail = f"that name already exists with Id {existing_id}"
        super().__init__(f"cannot restore product {name!r} with Id {restored_id}: {detail}")
        self.name = name
        self.restored_id = restored_id
        self.existing_id = existing_id
        self.existing_name = existing_name


def restore_products(
    engine: Engine, products: Iterable[RestoredProduct], batch_size: int = 1000, *, method: LoadMethod = "auto"
) -> BulkLoadResult:
    """Insert `products` with their own Id and PublicationDate; see the module docstring for skips and conflicts."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inserted = skipped = 0
    for batch in batched(products, batch_size):
        with Session(engine) as session, session.begin():
            count = _restore_batch(session, batch, method)
        inserted += count
        skipped += len(batch) - count
    return BulkLoadResult(inserted=inserted, skipped=skipped)


def _restore_batch(session: Session, batch: list[RestoredProduct], method: LoadMethod) -> int:
    last = lock_clock(session)
    ids = {product.id for product in batch}
    names = {product.record.name for product in batch}
    existing = session.execute(
        select(Product.id, Product.name).where(or_(Product.id.in_(ids), Product.name.in_(names)))
    ).all()
    name_by_id = {product_id: name for product_id, name in existing}
    id_by_name = {name: product_id for product_id, name in existing}

    fresh: list[ProductRow] = []
    for product in batch:
        name = product.record.name
        owner_of_name = id_by_name.get(name)
        name_of_id = name_by_id.get(product.id)
        if owner_of_name is None and name_of_id is None:
            # Registered before the next item is checked, so repeats inside the input are judged the same way.
            id_by_name[name] = product.id
            name_by_id[product.id] = name
            fresh.append((product.record, product.id, product.publication_date))
        elif owner_of_name == product.id and name_of_id == name:
            continue  # already restored (or a repeat in the input): skip, not compared
        elif owner_of_name is not None and owner_of_name != product.id:
            raise RestoreConflictError(name, product.id, owner_of_name, name)
        else:
            assert name_of_id is not None
            raise RestoreConflictError(name, product.id, product.id, name_of_id)
    if not fresh:
        return 0

    write_products(session, fresh, method)
    newest = max(publication_date for _record, _id, publication_date in fresh)
    if newest > last:
        session.execute(update(PublicationClock).where(PublicationClock.id == 1).values(last_publication_date=newest))
    return len(fresh)

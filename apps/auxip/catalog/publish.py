"""The idempotent write path: publish one product, visible to pollers with a strictly increasing PublicationDate.

Idempotency: the same Name published again with the same MD5 and ContentLength returns the product already in the
catalog, unchanged (same Id, same PublicationDate), so an ingestion retry after a crash is harmless. A different MD5
or length under the same Name raises `ProductConflictError`: the catalog never silently replaces a file clients may
already have downloaded and verified.

The existence check runs after the publication clock is locked (see `auxip.catalog.clock`): every publisher is
serialised on that lock, so two concurrent publications of one Name cannot both see "absent" and race on the
unique constraint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, bindparam, insert, select
from sqlalchemy.orm import Session

from auxip.catalog.clock import lock_clock, reserve_publication_dates
from auxip.catalog.models import Attribute, Checksum, Product
from auxip.catalog.records import ProductRecord
from auxip.catalog.rows import attribute_rows, checksum_rows, product_row


class ProductConflictError(Exception):
    """A product with this Name exists with different content; the catalog does not overwrite it."""

    def __init__(self, name: str, existing_md5: str | None, new_md5: str, existing_length: int, new_length: int):
        super().__init__(
            f"product {name!r} is already published with MD5 {existing_md5} and length {existing_length}; "
            f"refusing to replace it with MD5 {new_md5} and length {new_length}"
        )
        self.name = name


@dataclass(frozen=True, slots=True)
class PublishedProduct:
    id: uuid.UUID
    publication_date: datetime
    # False when the call found the identical product already published.
    created: bool


def publish_product(target: Session | Engine, record: ProductRecord) -> PublishedProduct:
    """Publish `record` and return its Id and PublicationDate.

    With an Engine, the whole publication is one transaction committed here. With a Session, the work joins the
    session's transaction and the caller must commit promptly: the publication clock stays locked until then.
    """
    if isinstance(target, Engine):
        with Session(target) as session, session.begin():
            return _publish(session, record)
    return _publish(target, record)


#: Built once (see `auxip.catalog.clock`): the name's product, if any, with its MD5.
_EXISTING = (
    select(Product.id, Product.publication_date, Product.content_length, Checksum.value)
    .outerjoin(Checksum, and_(Checksum.product_id == Product.id, Checksum.algorithm == "MD5"))
    .where(Product.name == bindparam("c_name"))
)
_INSERT_PRODUCT = insert(Product)
_INSERT_CHECKSUM = insert(Checksum)
_INSERT_ATTRIBUTE = insert(Attribute)


def _publish(session: Session, record: ProductRecord) -> PublishedProduct:
    last = lock_clock(session)
    conn = session.connection()
    existing = conn.execute(_EXISTING, {"c_name": record.name}).one_or_none()
    if existing is not None:
        existing_id, existing_date, existing_length, existing_md5 = existing
        if existing_md5 != record.md5 or existing_length != record.content_length:
            raise ProductConflictError(record.name, existing_md5, record.md5, existing_length, record.content_length)
        return PublishedProduct(id=existing_id, publication_date=existing_date, created=False)

    (publication_date,) = reserve_publication_dates(session, last)
    product_id = uuid.uuid4()
    # Core inserts rather than ORM objects: no identity-map bookkeeping on the hot path, same statements as bulk.
    conn.execute(_INSERT_PRODUCT, [product_row(record, product_id, publication_date)])
    conn.execute(_INSERT_CHECKSUM, checksum_rows(record, product_id, publication_date))
    attributes = attribute_rows(record, product_id)
    if attributes:
        conn.execute(_INSERT_ATTRIBUTE, attributes)
    return PublishedProduct(id=product_id, publication_date=publication_date, created=True)

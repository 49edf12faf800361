"""Turn a `ProductRecord` plus its assigned Id and PublicationDate into table rows (shared by publish and bulk).

Rows are built once, as tuples in the `*_COLUMNS` order: that is what PostgreSQL COPY takes. The dict forms used by
SQLAlchemy `insert()` executemany are zipped from the same tuples, so the COPY fast path and the portable path
cannot drift apart (one place decides what a column holds).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from auxip.catalog.models import VALUE_COLUMNS
from auxip.catalog.records import ProductRecord, value_type_of

PRODUCT_COLUMNS: Final = (
    "id",
    "name",
    "content_type",
    "content_length",
    "origin_date",
    "publication_date",
    "eviction_date",
    "content_date_start",
    "content_date_end",
    "storage_key",
    "evicted_at",
)
CHECKSUM_COLUMNS: Final = ("product_id", "algorithm", "value", "checksum_date")
ATTRIBUTE_COLUMNS: Final = ("product_id", "name", "value_type", *VALUE_COLUMNS.values())

# Position of each value type's column in an attribute tuple (after product_id, name, value_type).
_VALUE_SLOT: Final = {value_type: 3 + index for index, value_type in enumerate(VALUE_COLUMNS)}
_EMPTY_VALUES: Final = (None,) * len(VALUE_COLUMNS)


def product_values(record: ProductRecord, product_id: uuid.UUID, publication_date: datetime) -> tuple[Any, ...]:
    return (
        product_id,
        record.name,
        record.content_type,
        record.content_length,
        record.origin_date,
        publication_date,
        record.eviction_after(publication_date),
        record.content_date_start,
        record.content_date_end,
        record.storage_key,
        None,  # evicted_at
    )


def checksum_values(record: ProductRecord, product_id: uuid.UUID, publication_date: datetime) -> list[tuple[Any, ...]]:
    checksum_date = record.checksum_date or publication_date
    # Hex digests compare case-insensitively; store one canonical form.
    return [(product_id, algorithm, value.lower(), checksum_date) for algorithm, value in record.checksums.items()]


def attribute_values(record: ProductRecord, product_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = []
    for name, value in record.attributes.items():
        value_type = value_type_of(value)
        # Every row carries every value column (NULL but one): executemany batches share one statement shape, and
        # COPY needs every column anyway.
        row: list[Any] = [product_id, name, value_type, *_EMPTY_VALUES]
        row[_VALUE_SLOT[value_type]] = value
        rows.append(tuple(row))
    return rows


def product_row(record: ProductRecord, product_id: uuid.UUID, publication_date: datetime) -> dict[str, Any]:
    return dict(zip(PRODUCT_COLUMNS, product_values(record, product_id, publication_date), strict=True))


def checksum_rows(record: ProductRecord, product_id: uuid.UUID, publication_date: datetime) -> list[dict[str, Any]]:
    return [
        dict(zip(CHECKSUM_COLUMNS, row, strict=True)) for row in checksum_values(record, product_id, publication_date)
    ]


def attribute_rows(record: ProductRecord, product_id: uuid.UUID) -> list[dict[str, Any]]:
    return [dict(zip(ATTRIBUTE_COLUMNS, row, strict=True)) for row in attribute_values(record, product_id)]

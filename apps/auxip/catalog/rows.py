"""Turn a `ProductRecord` plus its assigned Id and PublicationDate into table rows (shared by publish and bulk)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from auxip.catalog.models import VALUE_COLUMNS
from auxip.catalog.records import ProductRecord, value_type_of


def product_row(record: ProductRecord, product_id: uuid.UUID, publication_date: datetime) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": record.name,
        "content_type": record.content_type,
        "content_length": record.content_length,
        "origin_date": record.origin_date,
        "publication_date": publication_date,
        "eviction_date": record.eviction_after(publication_date),
        "content_date_start": record.content_date_start,
        "content_date_end": record.content_date_end,
        "storage_key": record.storage_key,
        "evicted_at": None,
    }


def checksum_rows(record: ProductRecord, product_id: uuid.UUID, publication_date: datetime) -> list[dict[str, Any]]:
    checksum_date = record.checksum_date or publication_date
    return [
        {
            "product_id": product_id,
            "algorithm": algorithm,
            # Hex digests compare case-insensitively; store one canonical form.
            "value": value.lower(),
            "checksum_date": checksum_date,
        }
        for algorithm, value in record.checksums.items()
    ]


def attribute_rows(record: ProductRecord, product_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = []
    for name, value in record.attributes.items():
        value_type = value_type_of(value)
        # Every row carries every value column (NULL but one) so executemany batches share one statement shape.
        row: dict[str, Any] = {"product_id": product_id, "name": name, "value_type": value_type}
        row.update(dict.fromkeys(VALUE_COLUMNS.values()))
        row[VALUE_COLUMNS[value_type]] = value
        rows.append(row)
    return rows

"""Write a batch of products (with their Ids and PublicationDates already decided) inside the caller's transaction.

Two ways, same rows (both built by `auxip.catalog.rows`):
- `executemany`: SQLAlchemy Core inserts, which SQLAlchemy 2 sends as multi-row INSERTs ("insertmanyvalues"). Works
  on every backend; on PostgreSQL it measured ~1.4 ms per sample product here (a product is ~12 rows: product,
  checksum, ~10 attributes), against ~0.18 ms with COPY (benchmarks/catalog_load.py).
- `copy`: PostgreSQL `COPY ... FROM STDIN (FORMAT BINARY)` over the session's own psycopg 3 connection, so it joins
  the session's transaction (and hence runs under the publication clock lock the caller holds). Binary format
  skips text parsing on the server and psycopg's C row writer skips per-value Python dispatch; the column types
  are declared with `set_types` because binary COPY has no type inference. What remains is server-side, ~70% of it
  maintaining the five (name, value_<type>, product_id) attribute indexes, which take every attribute row, NULL
  values included (measured: ~28k products/s with those indexes dropped, ~5.5k/s with them).

Why not COPY into a staging table and `INSERT ... ON CONFLICT DO NOTHING`: the callers already pre-filter existing
names while holding the publication clock lock, and every writer of `product` takes that lock first, so nothing can
insert the same name between the check and the COPY. A staging table would add a second write of every row.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import psycopg
from sqlalchemy import insert
from sqlalchemy.orm import Session

from auxip.catalog.models import Attribute, Checksum, Product
from auxip.catalog.records import ProductRecord
from auxip.catalog.rows import (
    ATTRIBUTE_COLUMNS,
    CHECKSUM_COLUMNS,
    PRODUCT_COLUMNS,
    attribute_rows,
    attribute_values,
    checksum_rows,
    checksum_values,
    product_row,
    product_values,
)

#: "auto": COPY on PostgreSQL through psycopg 3, executemany elsewhere. "executemany": the portable path everywhere
#: (kept selectable so tests and the load benchmark can compare both on the same database).
LoadMethod = Literal["auto", "executemany"]

#: (record, Id, PublicationDate): one product ready to be written.
ProductRow = tuple[ProductRecord, uuid.UUID, datetime]

# PostgreSQL types of the columns, in the `*_COLUMNS` order, for binary COPY. varchar columns take the text wire
# format (identical bytes; the server still enforces the length limit).
_PRODUCT_TYPES: Final = (
    "uuid",
    "text",
    "text",
    "int8",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "timestamptz",
)
_CHECKSUM_TYPES: Final = ("uuid", "text", "text", "timestamptz")
_ATTRIBUTE_TYPES: Final = ("uuid", "text", "text", "text", "int8", "float8", "timestamptz", "bool")

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` items (itertools.batched is Python 3.12+)."""
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def write_products(session: Session, rows: list[ProductRow], method: LoadMethod = "auto") -> None:
    """Insert products, checksums and attributes for `rows` in the session's current transaction."""
    if not rows:
        return
    if method == "auto" and _psycopg_connection(session) is not None:
        _write_copy(session, rows)
    else:
        _write_executemany(session, rows)


def _psycopg_connection(session: Session) -> psycopg.Connection[Any] | None:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    driver_connection = connection.connection.driver_connection
    # Other PostgreSQL drivers (psycopg2, asyncpg adapters) keep the portable path.
    return driver_connection if isinstance(driver_connection, psycopg.Connection) else None


def _write_executemany(session: Session, rows: list[ProductRow]) -> None:
    products: list[dict[str, Any]] = []
    checksums: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    for record, product_id, publication_date in rows:
        products.append(product_row(record, product_id, publication_date))
        checksums.extend(checksum_rows(record, product_id, publication_date))
        attributes.extend(attribute_rows(record, product_id))
    session.execute(insert(Product), products)
    session.execute(insert(Checksum), checksums)
    if attributes:
        session.execute(insert(Attribute), attributes)


def _copy_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"


_COPY_PRODUCT: Final = _copy_sql(Product.__tablename__, PRODUCT_COLUMNS)
_COPY_CHECKSUM: Final = _copy_sql(Checksum.__tablename__, CHECKSUM_COLUMNS)
_COPY_ATTRIBUTE: Final = _copy_sql(Attribute.__tablename__, ATTRIBUTE_COLUMNS)


def _write_copy(session: Session, rows: list[ProductRow]) -> None:
    connection = _psycopg_connection(session)
    assert connection is not None  # checked by the caller
    # Products first: the checksum and attribute foreign keys are checked row by row during their COPY.
    with connection.cursor() as cursor:
        with cursor.copy(_COPY_PRODUCT) as copy:
            copy.set_types(list(_PRODUCT_TYPES))
            for record, product_id, publication_date in rows:
                copy.write_row(product_values(record, product_id, publication_date))
        with cursor.copy(_COPY_CHECKSUM) as copy:
            copy.set_types(list(_CHECKSUM_TYPES))
            for record, product_id, publication_date in rows:
                for row in checksum_values(record, product_id, publication_date):
                    copy.write_row(row)
        with cursor.copy(_COPY_ATTRIBUTE) as copy:
            copy.set_types(list(_ATTRIBUTE_TYPES))
            for record, product_id, _publication_date in rows:
                for row in attribute_values(record, product_id):
                    copy.write_row(row)

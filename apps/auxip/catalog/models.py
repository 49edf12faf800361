"""ORM models of the catalog, with the indexes chosen for the contract's access patterns.

Access patterns (auxip-odata-api.md, "How downloaders use it") and the index serving each:
- polling `PublicationDate gt <last> orderby PublicationDate asc, Id` with `$top`: `ix_product_publication` on
  (publication_date, id), read in order so the LIMIT stops early and paging is stable (tie-break on Id). There is
  deliberately no second, unique index on publication_date alone as a backstop to the publication clock: the planner
  prefers the narrower index and then sorts on Id (Incremental Sort), and it costs one more index per insert;
- `Name eq`: the unique constraint `uq_product_name` (also what makes publication idempotent);
- `startswith(Name, ...)`: PostgreSQL only uses a plain btree for LIKE 'x%' under the C collation, so
  `ix_product_name_pattern` uses `varchar_pattern_ops` (PostgreSQL only; SQLite uses the unique index when
  case-sensitive LIKE is on, and is a test/dev backend anyway). `contains`/`endswith` would need a pg_trgm GIN index;
  it is not created here because the extension needs CREATE privilege on the database and those filters are rare
  operator queries on a table of a few 100k rows, where a sequential scan is acceptable;
- `ContentDate` windows: `ix_product_content_start`, `ix_product_content_end`;
- eviction housekeeping (`EvictionDate lt now`): `ix_product_eviction`;
- attribute lambdas `att/Name eq 'x' and att/Value <op> v`: one (name, value_<type>, product_id) index per type, so
  the comparison is typed (no casts) and the index covers the join back to the product; `$expand=Attributes` reads
  through the primary key (product_id, name).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from auxip.catalog.types import UTCDateTime

# Deterministic constraint names: migrations can then refer to (and compare) them on every backend.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

VALUE_TYPES: Final = ("String", "Integer", "Double", "DateTimeOffset", "Boolean")
# value_type -> the one column holding the value for that type.
VALUE_COLUMNS: Final = {
    "String": "value_string",
    "Integer": "value_integer",
    "Double": "value_double",
    "DateTimeOffset": "value_datetime",
    "Boolean": "value_boolean",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Product(Base):
    __tablename__ = "product"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    content_length: Mapped[int] = mapped_column(BigInteger)
    origin_date: Mapped[datetime] = mapped_column(UTCDateTime)
    publication_date: Mapped[datetime] = mapped_column(UTCDateTime)
    eviction_date: Mapped[datetime] = mapped_column(UTCDateTime)
    content_date_start: Mapped[datetime] = mapped_column(UTCDateTime)
    # NULL = open-ended validity (SAFE names with a start only).
    content_date_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where the bytes are: an object key in the archive bucket, resolved by the download service.
    storage_key: Mapped[str] = mapped_column(String(1024))
    # Set when the file has been removed from the archive; the row stays for audit and metrics.
    evicted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    checksums: Mapped[list[Checksum]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Checksum.algorithm"
    )
    attributes: Mapped[list[Attribute]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Attribute.name"
    )

    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint("content_length >= 0", name="content_length_non_negative"),
        CheckConstraint(
            "content_date_end IS NULL OR content_date_end >= content_date_start", name="content_date_ordered"
        ),
        Index("ix_product_publication", "publication_date", "id"),
        Index("ix_product_content_start", "content_date_start"),
        Index("ix_product_content_end", "content_date_end"),
        Index("ix_product_eviction", "eviction_date"),
        # `$count` with an attribute filter probes one product per matching attribute only to check it is online:
        # an index-only probe into this partial index instead of a heap fetch (1M products, 100k matches: 138 ms
        # to 58 ms).
        Index(
            "ix_product_online",
            "id",
            postgresql_where=text("evicted_at IS NULL"),
            sqlite_where=text("evicted_at IS NULL"),
        ),
        # The few evicted products, for the anti-join of attribute-only counts (auxip.odata.products).
        Index(
            "ix_product_evicted",
            "id",
            postgresql_where=text("evicted_at IS NOT NULL"),
            sqlite_where=text("evicted_at IS NOT NULL"),
        ),
    )

    @property
    def evicted(self) -> bool:
        return self.evicted_at is not None


# PostgreSQL only (see the module docstring); `ddl_if` keeps it out of SQLite, and `migrate.include_object` keeps
# schema comparison consistent with that.
Index(
    "ix_product_name_pattern",
    Product.name,
    postgresql_ops={"name": "varchar_pattern_ops"},
).ddl_if(dialect="postgresql")


class Checksum(Base):
    __tablename__ = "product_checksum"

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    checksum_date: Mapped[datetime] = mapped_column(UTCDateTime)

    product: Mapped[Product] = relationship(back_populates="checksums")


def _one_typed_value() -> str:
    # Exactly one value column is set, and it is the one named by value_type.
    set_count = " + ".join(f"(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END)" for column in VALUE_COLUMNS.values())
    matching = " OR ".join(
        f"(value_type = '{value_type}' AND {column} IS NOT NULL)" for value_type, column in VALUE_COLUMNS.items()
    )
    return f"({set_count}) = 1 AND ({matching})"


def _typed_value_index(value_type: str, column: str) -> Index:
    # Partial: a row holds one typed value, so it enters one index instead of five (bulk loads were spending ~70%
    # of their time maintaining NULL entries). A comparison on the column implies IS NOT NULL, so filters use it.
    suffix = column.removeprefix("value_")
    only_typed = text(f"{column} IS NOT NULL")
    return Index(
        f"ix_attribute_{suffix}", "name", column, "product_id", postgresql_where=only_typed, sqlite_where=only_typed
    )


class Attribute(Base):
    __tablename__ = "product_attribute"

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value_type: Mapped[str] = mapped_column(String(16))
    value_string: Mapped[str | None] = mapped_column(Text)
    value_integer: Mapped[int | None] = mapped_column(BigInteger)
    value_double: Mapped[float | None] = mapped_column(Double)
    value_datetime: Mapped[datetime | None] = mapped_column(UTCDateTime)
    value_boolean: Mapped[bool | None] = mapped_column(Boolean)

    product: Mapped[Product] = relationship(back_populates="attributes")

    __table_args__ = (
        CheckConstraint(
            "value_type IN (" + ", ".join(f"'{value_type}'" for value_type in VALUE_TYPES) + ")",
            name="value_type_known",
        ),
        CheckConstraint(_one_typed_value(), name="one_typed_value"),
        *(_typed_value_index(value_type, column) for value_type, column in VALUE_COLUMNS.items()),
    )

    @property
    def value(self) -> str | int | float | datetime | bool:
        value: str | int | float | datetime | bool | None = getattr(self, VALUE_COLUMNS[self.value_type])
        if value is None:
            raise ValueError(f"attribute {self.name!r} has no {self.value_type} value")
        return value


class PublicationClock(Base):
    """A single row: the last PublicationDate handed out (see `auxip.catalog.clock`)."""

    __tablename__ = "publication_clock"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    last_publication_date: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

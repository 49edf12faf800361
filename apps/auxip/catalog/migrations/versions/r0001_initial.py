"""Initial catalog schema: product, product_checksum, product_attribute, publication_clock.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written by hand as a frozen copy of `auxip.catalog.models` at this revision (later model changes get new revisions);
tests/catalog checks that migrating to head gives exactly the ORM metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ONE_TYPED_VALUE = (
    "((CASE WHEN value_string IS NULL THEN 0 ELSE 1 END) + (CASE WHEN value_integer IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN value_double IS NULL THEN 0 ELSE 1 END) + (CASE WHEN value_datetime IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN value_boolean IS NULL THEN 0 ELSE 1 END)) = 1"
    " AND ((value_type = 'String' AND value_string IS NOT NULL)"
    " OR (value_type = 'Integer' AND value_integer IS NOT NULL)"
    " OR (value_type = 'Double' AND value_double IS NOT NULL)"
    " OR (value_type = 'DateTimeOffset' AND value_datetime IS NOT NULL)"
    " OR (value_type = 'Boolean' AND value_boolean IS NOT NULL))"
)


def _timestamp() -> sa.DateTime:
    # timestamptz (microseconds) on PostgreSQL; the ORM's UTCDateTime decorates exactly this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "product",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("content_length", sa.BigInteger(), nullable=False),
        sa.Column("origin_date", _timestamp(), nullable=False),
        sa.Column("publication_date", _timestamp(), nullable=False),
        sa.Column("eviction_date", _timestamp(), nullable=False),
        sa.Column("content_date_start", _timestamp(), nullable=False),
        sa.Column("content_date_end", _timestamp(), nullable=True),
        sa.Column("storage_key", sa.String(1024), nullable=False),
        sa.Column("evicted_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_product"),
        sa.UniqueConstraint("name", name="uq_product_name"),
        sa.CheckConstraint("content_length >= 0", name="ck_product_content_length_non_negative"),
        sa.CheckConstraint(
            "content_date_end IS NULL OR content_date_end >= content_date_start",
            name="ck_product_content_date_ordered",
        ),
    )
    op.create_index("ix_product_publication", "product", ["publication_date", "id"])
    op.create_index("ix_product_content_start", "product", ["content_date_start"])
    op.create_index("ix_product_content_end", "product", ["content_date_end"])
    op.create_index("ix_product_eviction", "product", ["eviction_date"])
    if op.get_bind().dialect.name == "postgresql":
        # startswith(Name, ...) under any collation (see auxip.catalog.models).
        op.create_index("ix_product_name_pattern", "product", ["name"], postgresql_ops={"name": "varchar_pattern_ops"})

    op.create_table(
        "product_checksum",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("checksum_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "algorithm", name="pk_product_checksum"),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name="fk_product_checksum_product_id_product", ondelete="CASCADE"
        ),
    )

    op.create_table(
        "product_attribute",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.Column("value_string", sa.Text(), nullable=True),
        sa.Column("value_integer", sa.BigInteger(), nullable=True),
        sa.Column("value_double", sa.Double(), nullable=True),
        sa.Column("value_datetime", _timestamp(), nullable=True),
        sa.Column("value_boolean", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("product_id", "name", name="pk_product_attribute"),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name="fk_product_attribute_product_id_product", ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "value_type IN ('String', 'Integer', 'Double', 'DateTimeOffset', 'Boolean')",
            name="ck_product_attribute_value_type_known",
        ),
        sa.CheckConstraint(ONE_TYPED_VALUE, name="ck_product_attribute_one_typed_value"),
    )
    for value_type, column in (
        ("string", "value_string"),
        ("integer", "value_integer"),
        ("double", "value_double"),
        ("datetime", "value_datetime"),
        ("boolean", "value_boolean"),
    ):
        op.create_index(f"ix_attribute_{value_type}", "product_attribute", ["name", column, "product_id"])

    clock = op.create_table(
        "publication_clock",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("last_publication_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_publication_clock"),
        sa.CheckConstraint("id = 1", name="ck_publication_clock_single_row"),
    )
    # The single row every publisher locks; the epoch is older than any real PublicationDate.
    op.bulk_insert(clock, [{"id": 1, "last_publication_date": datetime(1970, 1, 1, tzinfo=UTC)}])


def downgrade() -> None:
    op.drop_table("publication_clock")
    op.drop_table("product_attribute")
    op.drop_table("product_checksum")
    op.drop_table("product")

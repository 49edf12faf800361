"""Partial typed-value indexes on product_attribute: each row enters only the index of its own value type.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ("string", "integer", "double", "datetime", "boolean")


def upgrade() -> None:
    for suffix in COLUMNS:
        op.drop_index(f"ix_attribute_{suffix}", table_name="product_attribute")
        only_typed = sa.text(f"value_{suffix} IS NOT NULL")
        op.create_index(
            f"ix_attribute_{suffix}",
            "product_attribute",
            ["name", f"value_{suffix}", "product_id"],
            postgresql_where=only_typed,
            sqlite_where=only_typed,
        )


def downgrade() -> None:
    for suffix in COLUMNS:
        op.drop_index(f"ix_attribute_{suffix}", table_name="product_attribute")
        op.create_index(f"ix_attribute_{suffix}", "product_attribute", ["name", f"value_{suffix}", "product_id"])

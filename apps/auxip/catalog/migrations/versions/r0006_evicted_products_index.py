"""Partial index of evicted product ids, for the anti-join of attribute-only `$count` queries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    evicted = sa.text("evicted_at IS NOT NULL")
    op.create_index("ix_product_evicted", "product", ["id"], postgresql_where=evicted, sqlite_where=evicted)


def downgrade() -> None:
    op.drop_index("ix_product_evicted", table_name="product")

"""Partial index of online (not evicted) product ids, for index-only `$count` probes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    online = sa.text("evicted_at IS NULL")
    op.create_index("ix_product_online", "product", ["id"], postgresql_where=online, sqlite_where=online)


def downgrade() -> None:
    op.drop_index("ix_product_online", table_name="product")

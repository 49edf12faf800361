"""Singleton leases: one process at a time runs eviction (and any other singleton job), however many replicas run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Written by hand as a frozen copy of `auxip.catalog.leases` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "singleton_lease",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_singleton_lease"),
    )


def downgrade() -> None:
    op.drop_table("singleton_lease")

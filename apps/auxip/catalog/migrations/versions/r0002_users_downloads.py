"""Local users and download records: users, download_record.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Written by hand as a frozen copy of `auxip.auth.models` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    # timestamptz (microseconds) on PostgreSQL; the ORM's UTCDateTime decorates exactly this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "download_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("product_name", sa.String(255), nullable=False),
        sa.Column("product_type", sa.String(64), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_download_record"),
        sa.CheckConstraint("bytes >= 0", name="ck_download_record_bytes_non_negative"),
        sa.CheckConstraint("status IN ('in_progress', 'completed', 'failed')", name="ck_download_record_status_known"),
    )
    op.create_index("ix_download_record_user_started", "download_record", ["username", "started_at"])


def downgrade() -> None:
    op.drop_table("download_record")
    op.drop_table("users")

"""Routing: route_delivery, route_attempt, route_target_state.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Written by hand as a frozen copy of `auxip.routing.models` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "route_delivery",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("file_key", sa.String(128), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("local_ref", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("delivered_at", _timestamp(), nullable=True),
        sa.Column("location", sa.String(1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_route_delivery"),
        sa.UniqueConstraint("route", "target", "file_key", name="uq_route_delivery_once"),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="ck_route_delivery_state_known"),
    )
    op.create_index("ix_route_delivery_due", "route_delivery", ["state", "next_attempt_at"])
    op.create_index("ix_route_delivery_file", "route_delivery", ["file_key"])
    op.create_table(
        "route_attempt",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("ended_at", _timestamp(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_route_attempt"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["route_delivery.id"],
            name="fk_route_attempt_delivery_id_route_delivery",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_route_attempt_delivery", "route_attempt", ["delivery_id"])
    op.create_table(
        "route_target_state",
        sa.Column("target", sa.String(130), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("open_until", _timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("target", name="pk_route_target_state"),
    )


def downgrade() -> None:
    op.drop_table("route_target_state")
    op.drop_table("route_attempt")
    op.drop_table("route_delivery")

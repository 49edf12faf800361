"""Ingestion: ingest_item, ingest_quarantine, ingest_audit, ingest_source_state, bus_event, bus_offset.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Written by hand as a frozen copy of `auxip.ingest.models` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

ITEM_STATES = (
    "discovered", "fetched", "scanned", "prepared", "stored", "published", "announced", "routing", "routed",
    "quarantined", "duplicate",
)  # fmt: skip


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    op.create_table(
        "ingest_item",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("is_dir", sa.Boolean(), nullable=False),
        sa.Column("advertised_checksum", sa.String(160), nullable=True),
        sa.Column("origin_date", _timestamp(), nullable=False),
        sa.Column("discovered_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("staged_on", sa.String(255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("product_name", sa.String(255), nullable=True),
        sa.Column("product_type", sa.String(16), nullable=True),
        sa.Column("product_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_item"),
        sa.UniqueConstraint("source", "path", "version", name="uq_ingest_item_entry"),
        sa.CheckConstraint(_one_of("state", ITEM_STATES), name="ck_ingest_item_state_known"),
    )
    op.create_index("ix_ingest_item_due", "ingest_item", ["state", "next_attempt_at"])
    op.create_index("ix_ingest_item_product", "ingest_item", ["product_name"])

    op.create_table(
        "ingest_quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(255), nullable=True),
        sa.Column("scanner_version", sa.String(255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("path", sa.String(1024), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", _timestamp(), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_quarantine"),
        sa.ForeignKeyConstraint(
            ["item_id"], ["ingest_item.id"], name="fk_ingest_quarantine_item_id_ingest_item", ondelete="CASCADE"
        ),
        sa.CheckConstraint(_one_of("status", ("held", "released", "purged")), name="ck_ingest_quarantine_status_known"),
    )
    op.create_index("ix_ingest_quarantine_status", "ingest_quarantine", ["status", "created_at"])

    op.create_table(
        "ingest_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_audit"),
    )
    op.create_index("ix_ingest_audit_at", "ingest_audit", ["at"])

    op.create_table(
        "ingest_source_state",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("cursor", _timestamp(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("open_until", _timestamp(), nullable=True),
        sa.Column("last_poll_at", _timestamp(), nullable=True),
        sa.Column("last_success_at", _timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", name="pk_ingest_source_state"),
    )

    op.create_table(
        "bus_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bus_event"),
    )
    op.create_index("ix_bus_event_topic", "bus_event", ["topic", "id"])

    op.create_table(
        "bus_offset",
        sa.Column("consumer_group", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "topic", name="pk_bus_offset"),
    )


def downgrade() -> None:
    for table in ("bus_offset", "bus_event", "ingest_source_state", "ingest_audit", "ingest_quarantine"):
        op.drop_table(table)
    op.drop_table("ingest_item")

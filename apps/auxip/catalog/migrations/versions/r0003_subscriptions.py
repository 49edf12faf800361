"""Subscriptions: subscription, subscription_notification (the outbox), subscription_matcher_cursor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Written by hand as a frozen copy of `auxip.subscriptions.models` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filter_param", sa.Text(), nullable=False),
        sa.Column("submission_date", _timestamp(), nullable=False),
        sa.Column("last_notification_date", _timestamp(), nullable=True),
        sa.Column("notification_endpoint", sa.String(2048), nullable=False),
        sa.Column("endpoint_username", sa.String(255), nullable=True),
        sa.Column("endpoint_password", sa.String(1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscription"),
        sa.CheckConstraint("status IN ('running', 'paused', 'cancelled')", name="ck_subscription_status_known"),
    )
    op.create_index("ix_subscription_owner", "subscription", ["owner", "submission_date"])

    op.create_table(
        "subscription_notification",
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", "product_id", name="pk_subscription_notification"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscription.id"],
            name="fk_subscription_notification_subscription_id_subscription",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name="fk_subscription_notification_product_id_product",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="ck_subscription_notification_status_known"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_subscription_notification_attempts_non_negative"),
    )
    op.create_index("ix_notification_due", "subscription_notification", ["status", "next_attempt_at"])

    op.create_table(
        "subscription_matcher_cursor",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("last_publication_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscription_matcher_cursor"),
        sa.CheckConstraint("id = 1", name="ck_subscription_matcher_cursor_single_row"),
    )
    # Start at the publication clock: no subscription exists before this revision, so no product already published
    # can match one (a match needs SubmissionDate <= PublicationDate); the matcher need not rescan the archive.
    op.execute(
        "INSERT INTO subscription_matcher_cursor (id, last_publication_date) "
        "SELECT 1, last_publication_date FROM publication_clock WHERE id = 1"
    )


def downgrade() -> None:
    op.drop_table("subscription_matcher_cursor")
    op.drop_table("subscription_notification")
    op.drop_table("subscription")

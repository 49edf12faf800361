"""ORM models of the subscriptions: the subscription itself, its notification outbox and the matcher cursor.

"Never twice per (subscription, product)" rests on the outbox primary key (subscription_id, product_id): the matcher
inserts with ON CONFLICT DO NOTHING, so re-running it (a crash before the cursor commit, two matchers racing, a
restart) can never create a second notification for the same pair. Delivery state lives on that one row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from auxip.catalog.models import Base
from auxip.catalog.types import UTCDateTime

SUBSCRIPTION_STATUSES: Final = ("running", "paused", "cancelled")
NOTIFICATION_STATUSES: Final = ("pending", "delivered", "failed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class Subscription(Base):
    __tablename__ = "subscription"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The authenticated username that created it: ownership decides who may see and manage it.
    owner: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    # A Products $filter, validated (compiled) at creation and compiled again by the matcher.
    filter_param: Mapped[str] = mapped_column(Text)
    submission_date: Mapped[datetime] = mapped_column(UTCDateTime)
    last_notification_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notification_endpoint: Mapped[str] = mapped_column(String(2048))
    endpoint_username: Mapped[str | None] = mapped_column(String(255))
    # Needed in clear to build the Basic header, so it cannot be hashed. It is never serialised by the API nor logged
    # (see auxip.subscriptions.delivery). Production should keep it in Vault and store only a reference here.
    endpoint_password: Mapped[str | None] = mapped_column(String(1024))

    __table_args__ = (
        CheckConstraint(_one_of("status", SUBSCRIPTION_STATUSES), name="status_known"),
        # Listing one's own subscriptions; the matcher's "running" scan is over a small table and needs no index.
        Index("ix_subscription_owner", "owner", "submission_date"),
    )

    def __repr__(self) -> str:
        # Explicit so that no debug print or log of the object can ever include the endpoint password.
        return f"Subscription(id={self.id}, owner={self.owner!r}, status={self.status!r})"


class Notification(Base):
    """The outbox: one row per (subscription, matched product), whatever the number of delivery attempts."""

    __tablename__ = "subscription_notification"

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When a notifier may (re)try it; while a delivery is in flight it is the end of the claim's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_one_of("status", NOTIFICATION_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # The notifier's "due pending rows" scan.
        Index("ix_notification_due", "status", "next_attempt_at"),
    )


class MatcherCursor(Base):
    """A single row: the PublicationDate of the last product the matcher has processed.

    PublicationDate is strictly increasing in commit order (auxip.catalog.clock), so "publication_date > cursor"
    never skips a product committed after the cursor moved.
    """

    __tablename__ = "subscription_matcher_cursor"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    last_publication_date: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

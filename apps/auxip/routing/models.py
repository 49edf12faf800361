"""ORM models of routing: one delivery per (route, target, file), every attempt audited, a circuit per target.

"Exactly once per (file, target)" rests on the unique key (route, target, file_key): a repeated trigger (the same
file listed again, a `product.published` event delivered twice) finds the delivery already there. A crash mid-upload
redoes the upload to a temporary name and renames it over the final one, so the target still holds one copy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auxip.catalog.models import Base
from auxip.catalog.types import UTCDateTime

DELIVERY_STATES: Final = ("pending", "delivered", "dead")


class RouteDelivery(Base):
    __tablename__ = "route_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    route: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    #: `item:<ingest item id>` for files of a routed source, `product:<Id>` for published products.
    file_key: Mapped[str] = mapped_column(String(128))
    file_name: Mapped[str] = mapped_column(String(255))
    #: Where the bytes to send are: a staged file, or a storage key for published products.
    local_ref: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    location: Mapped[str | None] = mapped_column(String(1024))

    __table_args__ = (
        UniqueConstraint("route", "target", "file_key", name="uq_route_delivery_once"),
        CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state_known"),
        Index("ix_route_delivery_due", "state", "next_attempt_at"),
        Index("ix_route_delivery_file", "file_key"),
    )


class RouteAttempt(Base):
    """The audit record of one delivery attempt: file, checksum, source, target, start, end, bytes, result."""

    __tablename__ = "route_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("route_delivery.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    md5: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    bytes: Mapped[int] = mapped_column(BigInteger)
    #: `delivered`, or the classified error.
    result: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_route_attempt_delivery", "delivery_id"),)


class TargetState(Base):
    """Per target: its circuit breaker."""

    __tablename__ = "route_target_state"

    target: Mapped[str] = mapped_column(String(130), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    open_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

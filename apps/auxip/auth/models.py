"""ORM models of the local identity store and the download records, on the catalog's `Base`.

They share `auxip.catalog.models.Base` (and its naming convention) so one Alembic history and one metadata comparison
cover the whole database; revision r0002 creates them. Import this module wherever `Base.metadata` must be complete.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auxip.catalog.models import Base
from auxip.catalog.types import UTCDateTime

DOWNLOAD_STATUSES: Final = ("in_progress", "completed", "failed")


class User(Base):
    """A local account (embedded mode). Roles are comma-separated `Role` values; the hash is argon2id (PHC string)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (UniqueConstraint("username"),)


class DownloadRecord(Base):
    """One download attempt. No foreign key to `product`: the record outlives eviction (audit, metrics)."""

    __tablename__ = "download_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    product_id: Mapped[uuid.UUID] = mapped_column()
    product_name: Mapped[str] = mapped_column(String(255))
    product_type: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The expected size while in progress (so parallel downloads count against the volume quota), then the bytes sent.
    bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint("bytes >= 0", name="bytes_non_negative"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in DOWNLOAD_STATUSES) + ")", name="status_known"
        ),
        # The volume quota reads one user's records in a time window.
        Index("ix_download_record_user_started", "username", "started_at"),
    )

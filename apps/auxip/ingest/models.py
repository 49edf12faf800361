"""ORM models of the ingestion state: one row per discovered entry, quarantine, audit, per-source state, bus log.

Crash safety rests on `ingest_item`: every stage reads an item in one state, does its idempotent work, and moves it
to the next state with a conditional UPDATE (`WHERE id = ? AND state = ? AND claimed_by = ?`). A worker killed at any
point leaves the item in its last committed state with an expiring claim; the next worker redoes that one stage.
The dedup key (source, path, version) is unique, so a file is discovered — and fetched — once per version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auxip.catalog.models import Base
from auxip.catalog.types import UTCDateTime

#: The life of an item, in pipeline order, then the terminal states beside `announced`.
FLOW: Final = ("discovered", "fetched", "scanned", "prepared", "stored", "published", "announced")
#: Files of a routed source leave the flow after the scan: `routing` while deliveries run, `routed` once all are done.
ROUTED_FLOW: Final = ("routing", "routed")
TERMINAL: Final = ("announced", "quarantined", "duplicate", "routed")
ITEM_STATES: Final = (*FLOW, *ROUTED_FLOW, "quarantined", "duplicate")
QUARANTINE_STATUSES: Final = ("held", "released", "purged")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class IngestItem(Base):
    __tablename__ = "ingest_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    is_dir: Mapped[bool] = mapped_column(default=False)
    #: "ALGO:hex" as the source advertised it, verified against the fetched bytes.
    advertised_checksum: Mapped[str | None] = mapped_column(String(160))
    #: First seen at the source (or the source's own publication date): the product's OriginDate.
    origin_date: Mapped[datetime] = mapped_column(UTCDateTime)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    #: Failed attempts of the current stage (reset when the item moves on).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When a worker may take the item; while claimed, the end of the claim's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    #: Which staging area holds the fetched bytes (host and directory): the stages up to storage run there.
    staged_on: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The published file name, known once the entry name parsed (`<stem>.EOF.zip`, `<stem>.SAFE.zip`).
    product_name: Mapped[str | None] = mapped_column(String(255))
    product_type: Mapped[str | None] = mapped_column(String(16))
    product_id: Mapped[uuid.UUID | None] = mapped_column()
    #: JSON: what the stages learnt (scan verdict, checksums, metadata, storage key).
    details: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (
        UniqueConstraint("source", "path", "version", name="uq_ingest_item_entry"),
        CheckConstraint(_one_of("state", ITEM_STATES), name="state_known"),
        # Workers' "due items in my state" scan.
        Index("ix_ingest_item_due", "state", "next_attempt_at"),
        # Cross-source dedup and failover: is this product already on its way, or held by a better source?
        Index("ix_ingest_item_product", "product_name"),
    )


class QuarantineEntry(Base):
    __tablename__ = "ingest_quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("ingest_item.id", ondelete="CASCADE"))
    #: Machine-readable reason: infected, checksum-mismatch, size-mismatch, bad-name, empty, path-traversal, ...
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    #: The stage that refused it: a release re-enters the pipeline there.
    stage: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str | None] = mapped_column(String(255))
    scanner_version: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    #: Where the refused bytes are kept, relative to the quarantine directory (none when nothing was fetched).
    path: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_one_of("status", QUARANTINE_STATUSES), name="status_known"),
        Index("ix_ingest_quarantine_status", "status", "created_at"),
    )


class AuditRecord(Base):
    """Every operator action and every removal (quarantine release/purge, eviction), append-only."""

    __tablename__ = "ingest_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(1024))
    detail: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (Index("ix_ingest_audit_at", "at"),)


class SourceState(Base):
    """Per source: the circuit breaker and, for OData sources, the PublicationDate cursor."""

    __tablename__ = "ingest_source_state"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    open_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class BusEvent(Base):
    """The embedded event bus: an append-only log per topic, read by consumer groups from their offset."""

    __tablename__ = "bus_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_bus_event_topic", "topic", "id"),)


class BusOffset(Base):
    __tablename__ = "bus_offset"

    consumer_group: Mapped[str] = mapped_column(String(128), primary_key=True)
    topic: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)

"""Download records: one row per attempt, written at start and at finish; the volume quota reads them back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxip.auth.models import DownloadRecord

FinalStatus = Literal["completed", "failed"]


@dataclass(frozen=True)
class VolumeEntry:
    started_at: datetime
    bytes: int


def record_download_start(
    session: Session,
    username: str,
    product_id: uuid.UUID,
    product_name: str,
    product_type: str,
    expected_bytes: int,
    *,
    now: datetime | None = None,
) -> int:
    """Insert an in-progress record and return its id.

    `expected_bytes` (the product size) is counted until the finish, so downloads running in parallel already use the
    volume quota; a resumed Range request should pass the length of its range.
    """
    record = DownloadRecord(
        username=username,
        product_id=product_id,
        product_name=product_name,
        product_type=product_type,
        started_at=now or datetime.now(UTC),
        finished_at=None,
        bytes=expected_bytes,
        status="in_progress",
    )
    session.add(record)
    session.commit()
    return record.id


def record_download_finish(
    session: Session, record_id: int, bytes_sent: int, status: FinalStatus, *, now: datetime | None = None
) -> None:
    record = session.get_one(DownloadRecord, record_id)
    record.bytes = bytes_sent
    record.status = status
    record.finished_at = now or datetime.now(UTC)
    session.commit()


def volume_since(session: Session, username: str, since: datetime) -> list[VolumeEntry]:
    """The user's downloads started at or after `since`, oldest first (failed ones too: their bytes were sent)."""
    rows = session.execute(
        select(DownloadRecord.started_at, DownloadRecord.bytes)
        .where(DownloadRecord.username == username, DownloadRecord.started_at >= since)
        .order_by(DownloadRecord.started_at)
    )
    return [VolumeEntry(started_at, size) for started_at, size in rows.tuples()]

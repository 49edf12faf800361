"""Download records: start writes an in-progress row with the expected size, finish sets status, bytes, time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auxip.auth.downloads import VolumeEntry, record_download_finish, record_download_start, volume_since
from auxip.auth.models import DownloadRecord

T0 = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
PRODUCT = uuid.UUID("12345678-1234-5678-1234-567812345678")
NAME = "S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF.zip"


def test_start_and_finish(engine: Engine) -> None:
    with Session(engine) as session:
        record_id = record_download_start(session, "alice", PRODUCT, NAME, "AUX_POEORB", 4096, now=T0)
    with Session(engine) as session:
        record = session.get_one(DownloadRecord, record_id)
        assert (record.username, record.product_id, record.product_name, record.product_type) == (
            "alice",
            PRODUCT,
            NAME,
            "AUX_POEORB",
        )
        assert (record.started_at, record.finished_at, record.bytes, record.status) == (T0, None, 4096, "in_progress")
        record_download_finish(session, record_id, 4000, "completed", now=T0 + timedelta(seconds=3))
    with Session(engine) as session:
        record = session.get_one(DownloadRecord, record_id)
        assert (record.finished_at, record.bytes, record.status) == (T0 + timedelta(seconds=3), 4000, "completed")


def test_volume_since_is_per_user_and_ordered(engine: Engine) -> None:
    with Session(engine) as session:
        record_download_start(session, "alice", PRODUCT, NAME, "AUX_POEORB", 30, now=T0 + timedelta(hours=2))
        record_download_start(session, "alice", PRODUCT, NAME, "AUX_POEORB", 10, now=T0)
        record_download_start(session, "alice", PRODUCT, NAME, "AUX_POEORB", 99, now=T0 - timedelta(seconds=1))
        record_download_start(session, "bob", PRODUCT, NAME, "AUX_POEORB", 20, now=T0 + timedelta(hours=1))
        assert volume_since(session, "alice", T0) == [
            VolumeEntry(T0, 10),
            VolumeEntry(T0 + timedelta(hours=2), 30),
        ]


def test_constraints(engine: Engine) -> None:
    with Session(engine) as session:
        record_id = record_download_start(session, "alice", PRODUCT, NAME, "AUX_POEORB", 1, now=T0)
        with pytest.raises(IntegrityError):
            record_download_finish(session, record_id, -1, "completed")
        session.rollback()
        session.get_one(DownloadRecord, record_id).status = "paused"
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        assert session.scalars(select(DownloadRecord.status)).all() == ["in_progress"]

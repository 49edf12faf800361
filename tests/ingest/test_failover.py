"""Several sources offering the same products: fetched once from the preferred healthy source, failover otherwise."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from auxip.ingest.models import IngestItem
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import pipeline_config, published, published_events, running_pipeline, settled, wait_until
from auxip_testing.sample_feed import write_eof

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _by_source(engine, name: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(select(IngestItem.source, IngestItem.state).where(IngestItem.name == name))
        return dict(rows.tuples().all())


async def test_same_product_from_two_sources_is_fetched_from_the_preferred_one(
    tmp_path: Path, clamd: ClamdServer
) -> None:
    primary, secondary = tmp_path / "primary", tmp_path / "secondary"
    primary.mkdir()
    secondary.mkdir()
    files = [write_eof(primary, "AUX_POEORB", unit, T0, T0 - timedelta(days=1), T0) for unit in "ABC"]
    for file in files:
        shutil.copy(file, secondary / file.name)
    config = pipeline_config(
        tmp_path / "data",
        [
            {"name": "backup", "url": secondary.as_uri(), "priority": 20},
            {"name": "main", "url": primary.as_uri(), "priority": 10},
        ],
        f"tcp://{clamd.host}:{clamd.port}",
    )
    async with running_pipeline(config) as engine:
        await settled(engine, 2 * len(files))
        products = published(engine)
        events = published_events(engine)
        by_source = {file.name: _by_source(engine, file.name) for file in files}
    assert sorted(products) == sorted(f"{file.name}.zip" for file in files)
    assert len(events) == len(files)
    assert all(states == {"main": "announced", "backup": "duplicate"} for states in by_source.values()), by_source


async def test_preferred_source_failing_to_deliver_fails_over_to_the_other(tmp_path: Path, clamd: ClamdServer) -> None:
    primary, secondary = tmp_path / "primary", tmp_path / "secondary"
    primary.mkdir()
    secondary.mkdir()
    file = write_eof(primary, "AUX_RESORB", "A", T0, T0 - timedelta(hours=3), T0, osv_count=7000)  # ~3.3 MB
    shutil.copy(file, secondary / file.name)
    config = pipeline_config(
        tmp_path / "data",
        [
            # A slow link: the transfer is still running when the file breaks at the source.
            {"name": "main", "url": primary.as_uri(), "priority": 10, "bandwidth_limit": 200_000},
            {"name": "backup", "url": secondary.as_uri(), "priority": 20},
        ],
        f"tcp://{clamd.host}:{clamd.port}",
        ingest={"max_attempts": 3},
    )
    async with running_pipeline(config) as engine:
        await wait_until(lambda: _by_source(engine, file.name).get("main") == "discovered", 10, "main discovered it")
        await wait_until(lambda: len(_by_source(engine, file.name)) == 2, 10, "backup discovered it too")
        assert published(engine) == {}  # the backup waits for the preferred source
        file.write_bytes(b"")  # the main source's copy breaks mid-transfer
        await wait_until(lambda: f"{file.name}.zip" in published(engine), 60, "published through the backup")
        states = _by_source(engine, file.name)
    assert states["backup"] in ("published", "announced")

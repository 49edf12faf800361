"""Faults around the pipeline: a failing source opens its circuit and recovers; a full staging disk makes files wait."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from auxip.ingest.models import SourceState
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import pipeline_config, published, running_pipeline, settled, states, wait_until
from auxip_testing.sample_feed import write_eof

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _source_state(engine, name: str) -> tuple[int, datetime | None]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        row = conn.execute(
            select(SourceState.consecutive_failures, SourceState.open_until).where(SourceState.source == name)
        ).one_or_none()
        return (0, None) if row is None else (row[0], row[1])


async def test_a_failing_source_opens_its_circuit_and_recovers(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "not-yet-mounted"
    config = pipeline_config(
        tmp_path / "data",
        [{"name": "flaky", "url": inbox.as_uri()}],
        f"tcp://{clamd.host}:{clamd.port}",
        ingest={"circuit_threshold": 2, "circuit_open_seconds": 1.0},
    )
    async with running_pipeline(config) as engine:
        await wait_until(lambda: _source_state(engine, "flaky")[1] is not None, 10, "the circuit opened")
        failures, open_until = _source_state(engine, "flaky")
        assert failures >= 2
        assert open_until is not None
        assert open_until > datetime.now(UTC) - timedelta(seconds=5)
        inbox.mkdir()
        file = write_eof(inbox, "AUX_RESORB", "A", T0, T0 - timedelta(hours=3), T0)
        await settled(engine, 1, timeout=30)
        assert list(published(engine)) == [f"{file.name}.zip"]
        assert _source_state(engine, "flaky") == (0, None)


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    if mounted.returncode != 0:
        pytest.skip("needs root to mount a small tmpfs as the staging filesystem")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_full_staging_disk_makes_files_wait_then_they_go_through(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    big = write_eof(inbox, "AUX_POEORB", "A", T0, T0 - timedelta(days=1), T0, osv_count=6000)  # ~2.8 MB
    with _small_filesystem(tmp_path / "staging", "1m") as staging:
        config = pipeline_config(
            tmp_path / "data",
            [{"name": "local", "url": inbox.as_uri()}],
            f"tcp://{clamd.host}:{clamd.port}",
            ingest={"staging_dir": str(staging)},
        )
        async with running_pipeline(config) as engine:
            await wait_until(lambda: states(engine).get(big.name) == "discovered", 10, "discovered")
            import asyncio

            await asyncio.sleep(1.5)
            assert states(engine) == {big.name: "discovered"}  # waits: neither lost nor quarantined
            subprocess.run(["mount", "-o", "remount,size=64m", str(staging)], check=True)
            final = await settled(engine, 1, timeout=30)
        assert final == {big.name: "announced"}

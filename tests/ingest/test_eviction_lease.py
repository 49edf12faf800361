"""Eviction runs in one process of a deployment at a time, and another takes over when that one stops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from auxip.catalog.migrate import make_engine
from auxip.ingest import service as service_module
from auxip.ingest.bus import open_bus
from auxip.ingest.service import IngestService
from auxip.ingest.settings import BusSettings
from auxip_testing.ingest import pipeline_config


async def test_one_replica_evicts_and_another_takes_over_after_a_clean_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = pipeline_config(tmp_path / "data", [], "disabled", ingest={"eviction_interval_seconds": 0.1})
    rounds: list[int] = []

    async def recording(engine: Any, storage: Any, **_: Any) -> list[str]:
        rounds.append(id(storage))  # each replica has storage of its own: who evicted in this round
        return []

    monkeypatch.setattr(service_module, "evict_expired", recording)
    engine = make_engine(config.catalog_url)
    replicas = [IngestService(config, engine, config.open_storage(), open_bus(BusSettings(), engine)) for _ in range(3)]
    stops = [asyncio.Event() for _ in replicas]
    loops = [asyncio.create_task(r._eviction_loop(stop)) for r, stop in zip(replicas, stops, strict=True)]
    try:
        await asyncio.sleep(1.0)
        holders = set(rounds)
        assert len(holders) == 1, "two replicas evicted"
        assert len(rounds) >= 5
        first = next(i for i, r in enumerate(replicas) if id(r.pipeline.storage) in holders)
        stops[first].set()
        await loops[first]  # gives the lease back on the way out
        rounds.clear()
        await asyncio.sleep(1.0)
        assert len(set(rounds)) == 1
        assert rounds
        assert rounds[0] != id(replicas[first].pipeline.storage)
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*loops)
        engine.dispose()

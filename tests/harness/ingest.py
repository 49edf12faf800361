"""Run the ingestion pipeline inside a test: config on loopback servers, the service in the test's loop, waits.

`pipeline_config(tmp_path, sources, scanner_url)` gives a fast-reacting configuration (short sweeps, leases and
retries); `running_pipeline(config)` runs `IngestService` until the block exits; `settled(engine)` waits until no item
is in flight. Assertions then read the catalog, storage, quarantine and the bus log directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select

from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Checksum, Product
from auxip.config import AuxipConfig
from auxip.ingest.bus import PRODUCT_PUBLISHED, open_bus
from auxip.ingest.models import TERMINAL, BusEvent, IngestItem
from auxip.ingest.service import IngestService

FAST = {
    "sweep_seconds": 0.1,
    "lease_seconds": 5,
    "retry_base_seconds": 0.1,
    "retry_max_seconds": 1.0,
    "circuit_open_seconds": 1.0,
    "min_free_bytes": 0,
}


def credentials_file(directory: Path, **fields: Any) -> str:
    """A `file:` credentials reference for a source or target: the fields as YAML in a file only its owner reads."""
    path = directory / f"credentials-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({key: str(value) for key, value in fields.items()}))
    path.chmod(0o600)
    return f"file:{path}"


def pipeline_config(
    data_dir: Path,
    sources: Sequence[Mapping[str, Any]],
    scanner: str | Mapping[str, Any],
    **overrides: Any,
) -> AuxipConfig:
    """Sources poll every 0.2 s with no settle time unless they say otherwise; `scanner` is a URL or 'disabled'."""
    document: dict[str, Any] = {
        "data_dir": str(data_dir),
        "sources": [{"poll_interval": 0.2, "settle_seconds": 0, **source} for source in sources],
        "scanner": scanner if scanner == "disabled" or isinstance(scanner, Mapping) else {"url": scanner},
        "ingest": {**FAST, **overrides.pop("ingest", {})},
        **overrides,
    }
    config = AuxipConfig.model_validate(document)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.catalog_url)
    return config


@contextlib.asynccontextmanager
async def running_pipeline(config: AuxipConfig) -> AsyncIterator[Engine]:
    engine = make_engine(config.catalog_url)
    storage = config.open_storage()
    bus = open_bus(config.bus, engine)
    service = IngestService(config, engine, storage, bus)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield engine
    finally:
        stop.set()
        await task
        await service.close()
        await bus.close()
        await storage.close()
        engine.dispose()


def states(engine: Engine) -> dict[str, str]:
    """Entry name -> item state (of the last item of that name: see `all_states` for several sources)."""
    return {name: state for _source, name, state in all_states(engine)}


def all_states(engine: Engine) -> list[tuple[str, str, str]]:
    """(source, entry name, state) of every item."""
    with engine.connect() as conn:
        query = select(IngestItem.source, IngestItem.name, IngestItem.state).order_by(IngestItem.id)
        return [(source, name, state) for source, name, state in conn.execute(query)]


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


async def settled(engine: Engine, expected: int, timeout: float = 60.0) -> dict[str, str]:
    """Wait until `expected` items exist and every one is in a terminal state; returns `states`."""

    def done() -> bool:
        current = all_states(engine)
        return len(current) >= expected and all(state in TERMINAL for _source, _name, state in current)

    try:
        await wait_until(done, timeout, f"{expected} items settled")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; states now: {states(engine)}") from None
    return states(engine)


@dataclass(frozen=True)
class PublishedFile:
    name: str
    size: int
    md5: str
    storage_key: str
    evicted: bool


def published(engine: Engine) -> dict[str, PublishedFile]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Product.name, Product.content_length, Checksum.value, Product.storage_key, Product.evicted_at).join(
                Checksum, (Checksum.product_id == Product.id) & (Checksum.algorithm == "MD5")
            )
        )
        return {row[0]: PublishedFile(row[0], row[1], row[2], row[3], row[4] is not None) for row in rows}


def published_events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        payloads = conn.execute(
            select(BusEvent.payload).where(BusEvent.topic == PRODUCT_PUBLISHED).order_by(BusEvent.id)
        ).scalars()
        return [json.loads(payload) for payload in payloads]


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

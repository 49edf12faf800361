"""SIGKILL `auxip serve` at every stage boundary, restart it: zero lost, zero duplicated, zero half-published.

The first run carries `AUXIP_FAULT_POINT=<stage>.after`, so the process kills itself right after that stage's work and
before its state commit; the "during download" case kills it from outside while a throttled transfer is writing.
The second run has no fault. Assertions read the catalog, the storage directory and the bus log.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from auxip.catalog.migrate import make_engine
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import md5_of, published, published_events, states
from auxip_testing.process import free_port
from auxip_testing.sample_feed import feed
from auxip_testing.serve_processes import serve_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _config(tmp_path: Path, inbox: Path, clamd: ClamdServer, bandwidth: int | None = None) -> Path:
    source = {"name": "local", "url": inbox.as_uri(), "poll_interval": 0.2, "settle_seconds": 0}
    if bandwidth:
        source["bandwidth_limit"] = bandwidth
    document = {
        "data_dir": str(tmp_path / "data"),
        "api": {"listen": f"127.0.0.1:{free_port()}"},
        "sources": [source],
        "scanner": {"url": f"tcp://{clamd.host}:{clamd.port}"},
        "ingest": {"sweep_seconds": 0.1, "lease_seconds": 5, "retry_base_seconds": 0.1, "min_free_bytes": 0},
    }
    path = tmp_path / "auxip.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _wait(check, timeout: float, what: str, log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"not within {timeout} s: {what}\n--- log tail ---\n{tail}")
        time.sleep(0.1)


def _assert_exactly_once(tmp_path: Path, inputs: list[Path]) -> None:
    data = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data / 'catalog.db'}")
    try:
        products = published(engine)
        events = published_events(engine)
        final = states(engine)
    finally:
        engine.dispose()
    expected = {path.name if path.name.endswith(".zip") else _published_name(path) for path in inputs}
    assert set(products) == expected
    assert set(final.values()) == {"announced"}
    # One event per product, none repeated.
    assert sorted(event["ProductName"] for event in events) == sorted(expected)
    # Storage holds exactly the published objects, each with the catalog's bytes; nothing half-written.
    stored = sorted(p.relative_to(data / "products").as_posix() for p in (data / "products").rglob("*") if p.is_file())
    assert stored == sorted(product.storage_key for product in products.values())
    for product in products.values():
        assert md5_of(data / "products" / product.storage_key) == product.md5
    leftovers = [p for p in (data / "staging").rglob("*") if p.is_file()] if (data / "staging").exists() else []
    assert leftovers == []


def _published_name(path: Path) -> str:
    from auxip.ingest.naming import parse_name

    return parse_name(path.name).published_name


@pytest.mark.parametrize("fault", ["fetch.after", "scan.after", "store.after", "publish.after"])
def test_sigkill_after_a_stage_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path, clamd: ClamdServer, fault: str
) -> None:
    inbox = tmp_path / "inbox"
    inputs = feed(inbox, 8, seed=11, sizes=(10_000, 100_000))
    config = _config(tmp_path, inbox, clamd)
    log = tmp_path / "serve.log"
    first = serve_process(config, log, fault=fault)
    try:
        assert first.wait(timeout=60) == -signal.SIGKILL, "the fault point must have killed the process"
    finally:
        first.kill()
    second = serve_process(config, log)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
        _wait(
            lambda: len(published_events(engine)) >= len(inputs) and set(states(engine).values()) == {"announced"},
            90,
            f"all {len(inputs)} products announced after the restart",
            log,
        )
        time.sleep(1.0)  # more sweeps: a duplicate would show now
        engine.dispose()
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
    _assert_exactly_once(tmp_path, inputs)


def test_sigkill_during_a_download_then_restart(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inputs = feed(inbox, 3, seed=12, sizes=(600_000, 900_000))
    config = _config(tmp_path, inbox, clamd, bandwidth=200_000)
    log = tmp_path / "serve.log"
    staging = tmp_path / "data" / "staging"
    first = serve_process(config, log)
    try:

        def partial_download() -> bool:
            files = [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []
            return any(p.stat().st_size > 0 for p in files)

        _wait(partial_download, 30, "a transfer in progress", log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    fast = _config(tmp_path, inbox, clamd)
    second = serve_process(fast, log)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
        _wait(
            lambda: set(states(engine).values()) == {"announced"} and len(states(engine)) == len(inputs),
            90,
            "every product announced",
            log,
        )
        engine.dispose()
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
    _assert_exactly_once(tmp_path, inputs)

"""SIGKILL `auxip serve` in the middle of a fan-out (after an upload, before it is recorded), restart: completed,
every target holds each file exactly once, nothing left at a temporary name."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from auxip.catalog.migrate import make_engine
from auxip.routing.engine import list_deliveries
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import states
from auxip_testing.process import free_port
from auxip_testing.serve_processes import serve_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def routing_config(tmp_path: Path, clamd: ClamdServer, outbox: Path, targets: list[Path], **route: object) -> Path:
    """An `auxip serve` configuration: the local `outbox` as a source, routed to every directory of `targets`."""
    document = {
        "data_dir": str(tmp_path / "data"),
        "api": {"listen": f"127.0.0.1:{free_port()}"},
        "sources": [{"name": "sra-outbox", "url": outbox.as_uri(), "poll_interval": 0.2, "settle_seconds": 0}],
        "scanner": {"url": f"tcp://{clamd.host}:{clamd.port}"},
        "ingest": {"sweep_seconds": 0.1, "lease_seconds": 5, "retry_base_seconds": 0.1},
        "routes": [
            {
                "name": "sra-out",
                "trigger": {"source": "sra-outbox"},
                "targets": [{"name": f"t{i}", "url": target.as_uri(), "concurrency": 1} for i, target in
                            enumerate(targets)],
                **route,
            }
        ],
    }  # fmt: skip
    config = tmp_path / "auxip.yaml"
    config.write_text(yaml.safe_dump(document))
    return config


def wait_routed(tmp_path: Path, count: int, log: Path, timeout: float = 120) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
    try:
        deadline = time.monotonic() + timeout
        while set(states(engine).values()) != {"routed"} or len(states(engine)) != count:
            assert time.monotonic() < deadline, f"not routed in time: {states(engine)}\n{log.read_text()[-2000:]}"
            time.sleep(0.2)
    finally:
        engine.dispose()


def test_sigkill_mid_fan_out_then_restart_completes_without_duplicates(tmp_path: Path, clamd: ClamdServer) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    contents = {f"SRA_EXCHANGE_{i:02d}.dat": os.urandom(30_000 + i) for i in range(6)}
    for name, data in contents.items():
        (outbox / name).write_bytes(data)
    targets = [tmp_path / f"target-{letter}" for letter in "abc"]
    for target in targets:
        target.mkdir()
    config = routing_config(tmp_path, clamd, outbox, targets, post_delivery={"action": "move", "move_to": "done"})
    log = tmp_path / "serve.log"
    first = serve_process(config, log, fault="deliver.after")
    try:
        assert first.wait(timeout=60) == -signal.SIGKILL
    finally:
        first.kill()
    uploaded_before_restart = sum(1 for target in targets for _ in target.iterdir())
    assert uploaded_before_restart >= 1  # the kill came after an upload that was never recorded
    second = serve_process(config, log)
    try:
        wait_routed(tmp_path, len(contents), log, timeout=60)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
    deliveries = list_deliveries(engine)
    engine.dispose()
    assert len(deliveries) == len(contents) * len(targets)
    assert {delivery["state"] for delivery in deliveries} == {"delivered"}
    for target in targets:
        assert sorted(p.name for p in target.iterdir()) == sorted(contents)  # once each, no temporary names
        for name, data in contents.items():
            assert (target / name).read_bytes() == data
    assert sorted(p.name for p in (outbox / "done").iterdir()) == sorted(contents)
    assert [p.name for p in outbox.iterdir()] == ["done"]


def test_repeated_sigkills_between_upload_and_rename_leave_no_temporary_files(
    tmp_path: Path, clamd: ClamdServer
) -> None:
    # 300 files to two directory targets; three processes are killed with an upload written and not yet renamed
    # (each redone later, by another process), then one runs to the end.
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    contents = {f"S1A_MP_PLAN_{i:04d}.xml": os.urandom(2_000 + i) for i in range(300)}
    for name, data in contents.items():
        (outbox / name).write_bytes(data)
    targets = [tmp_path / "target-a", tmp_path / "target-b"]
    for target in targets:
        target.mkdir()
    config = routing_config(tmp_path, clamd, outbox, targets)
    log = tmp_path / "serve.log"
    for _ in range(3):
        killed = serve_process(config, log, fault="deliver.uploaded")
        try:
            assert killed.wait(timeout=60) == -signal.SIGKILL
        finally:
            killed.kill()
    left = [p.name for target in targets for p in target.iterdir() if p.name.endswith(".part")]
    assert left, "no kill came between an upload and its rename: the test proved nothing"
    last = serve_process(config, log)
    try:
        wait_routed(tmp_path, len(contents), log)
    finally:
        last.send_signal(signal.SIGINT)
        last.wait(timeout=30)
    for target in targets:
        assert sorted(p.name for p in target.iterdir()) == sorted(contents)  # no temporary file left
        assert all((target / name).read_bytes() == data for name, data in contents.items())

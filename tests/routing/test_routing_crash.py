"""SIGKILL `auxip serve` in the middle of a fan-out (after an upload, before it is recorded), restart: completed,
every target holds each file exactly once, nothing left at a temporary name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from auxip.catalog.migrate import make_engine
from auxip.routing.engine import list_deliveries
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import states
from auxip_testing.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUXIP = str(Path(sys.executable).with_name("auxip"))


def test_sigkill_mid_fan_out_then_restart_completes_without_duplicates(tmp_path: Path, clamd: ClamdServer) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    contents = {f"SRA_EXCHANGE_{i:02d}.dat": os.urandom(30_000 + i) for i in range(6)}
    for name, data in contents.items():
        (outbox / name).write_bytes(data)
    targets = [tmp_path / f"target-{letter}" for letter in "abc"]
    for target in targets:
        target.mkdir()
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
                "post_delivery": {"action": "move", "move_to": "done"},
            }
        ],
    }  # fmt: skip
    config = tmp_path / "auxip.yaml"
    config.write_text(yaml.safe_dump(document))
    log = tmp_path / "serve.log"
    env = {**os.environ, "AUXIP_FAULT_POINT": "deliver.after"}
    first = subprocess.Popen([AUXIP, "serve", "-c", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT,
                             env=env)  # fmt: skip
    try:
        assert first.wait(timeout=60) == -signal.SIGKILL
    finally:
        first.kill()
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
    uploaded_before_restart = sum(1 for target in targets for _ in target.iterdir())
    assert uploaded_before_restart >= 1  # the kill came after an upload that was never recorded
    env.pop("AUXIP_FAULT_POINT")
    second = subprocess.Popen([AUXIP, "serve", "-c", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT,
                              env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while set(states(engine).values()) != {"routed"} or len(states(engine)) != len(contents):
            assert time.monotonic() < deadline, f"not routed in time: {states(engine)}\n{log.read_text()[-2000:]}"
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
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

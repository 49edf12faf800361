"""`auxip serve` as separate processes, as hosts or pods run it: start one with its own config, wait, watch claims.

`serve_process(config, log, roles, environ, fault)` starts one on a written configuration;
`start_serve(home, name, document, environ, roles)` writes the configuration under `home/<name>/`, starts the process
with its output in `serve.log` there, and returns a `ServeProcess`; `wait_until` polls a condition and fails with the
logs' tails (or at once when a process that should live exited); `ClaimWatcher` samples which process claimed which
item, the only trace of who worked on what.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select

from auxip.config import AuxipConfig
from auxip.ingest.models import IngestItem

AUXIP = str(Path(sys.executable).with_name("auxip"))
#: The variable `auxip.ingest.faults` reads.
FAULT_POINT = "AUXIP_FAULT_POINT"


@dataclass
class ServeProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    api_port: int
    config: AuxipConfig

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def tail(self) -> str:
        return f"--- {self.name} (pid {self.pid}) ---\n" + self.log.read_text(errors="replace")[-2500:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def serve_environment() -> dict[str, str]:
    """This environment without AWS_* and AUXIP_* variables: a process configured by its file only."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "AUXIP_"))}


def serve_process(
    config: Path,
    log: Path,
    roles: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    fault: str | None = None,
) -> subprocess.Popen[bytes]:
    """`auxip serve --config CONFIG [--role R ...]` with its output appended to `log`; `fault` is a fault point
    (`auxip.ingest.faults`) where it SIGKILLs itself, never inherited from the test's own environment."""
    env = {key: value for key, value in (os.environ if environ is None else environ).items() if key != FAULT_POINT}
    if fault:
        env[FAULT_POINT] = fault
    argv = [AUXIP, "serve", "--config", str(config), *[arg for role in roles for arg in ("--role", role)]]
    return subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def start_serve(
    home: Path,
    name: str,
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    roles: Sequence[str] = (),
) -> ServeProcess:
    """`auxip serve --config home/<name>/auxip.yaml [--role R ...]`: `document` is written as that file."""
    directory = home / name
    directory.mkdir(parents=True)
    path = directory / "auxip.yaml"
    path.write_text(yaml.safe_dump(dict(document)))
    log = directory / "serve.log"
    process = serve_process(path, log, roles, environ)
    config = AuxipConfig.model_validate(document)
    return ServeProcess(name, process, log, config.api.port, config)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    processes: Sequence[ServeProcess],
    alive: Sequence[ServeProcess] | None = None,
) -> None:
    """Poll `check` until true; fail with the processes' log tails on timeout or when one of `alive` exited."""
    deadline = time.monotonic() + timeout
    alive = processes if alive is None else alive
    while not check():
        dead = [process for process in alive if process.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            problem = f"{', '.join(p.name for p in dead)} exited" if dead else f"not within {timeout} s"
            raise AssertionError(f"{problem}: {what}\n" + "\n".join(process.tail() for process in processes))
        time.sleep(0.1)


class ClaimWatcher:
    """Samples `ingest_item.claimed_by` while the processes run: the only trace of which process worked on what,
    since a transition clears the claim and neither the item's details nor the log lines name the worker."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: (item id, pid, stage role) seen claimed at least once.
        self.claims: set[tuple[int, int, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        query = select(IngestItem.id, IngestItem.claimed_by).where(IngestItem.claimed_by.is_not(None))
        while not self._stop.is_set():
            with self.engine.connect() as conn:
                for item_id, owner in conn.execute(query):
                    _host, pid, role, _nonce = owner.split(":")
                    self.claims.add((item_id, int(pid), role))
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def by_pid(self) -> Counter[int]:
        """Distinct (item, stage) claims observed per process."""
        return Counter(pid for _item, pid, _role in self.claims)

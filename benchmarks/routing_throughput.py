"""Routing throughput: N files from a local source fanned out to three SFTP targets, against `rclone copy`.

Target (issue): 1,000 files of 1 MB to three SFTP targets at >= 0.9x the files/s of `rclone copy` of the same set to
the same targets in the same run, and the delivery latency p50/p95 from trigger to verified delivery.

Three private sshd (harness `run_sftp`, one per target) and the harness clamd. Per setting, in one run:
- Baseline: three `rclone copy SRC tN:/dir --transfers 4` at once, one per target, into fresh directories. rclone is
  configured by environment only (`RCLONE_CONFIG=/dev/null`, `RCLONE_CONFIG_TN_*`). What it verifies by default over
  SFTP: the size after upload; a hash only if it can run `md5sum` remotely, which `internal-sftp` forbids, so
  `shell_type none` and `disable_hashcheck` only spare it the probe. It writes to the final name directly and sets
  the modification time afterwards; the pipeline writes a temporary name, checks the size and renames.
- Pipeline: the real `IngestService` (harness `running_pipeline`) on a fresh data dir (SQLite catalog), a local
  source over the same files and one route with the three targets (`concurrency` each), timed from the service's
  start until every item is `routed`, which needs its three deliveries delivered. The files also pass the antivirus
  stage (clamd), which rclone does not: clamd's CPU time is printed beside the wall time.
- Afterwards each target directory must hold all N files with the right sizes, and a sample with the right MD5.

Latency is read from the catalog: `route_delivery.created_at` -> `delivered_at` (planned -> delivered), and
`ingest_item.discovered_at` -> `delivered_at` (trigger -> verified delivery: the upload's size check and rename are
done when `delivered_at` is written).

Settings are compared in one run by giving comma lists (`--processes 1,2 --concurrency 4,8`: every combination,
each against its own baseline run just before it). `--scan off` disables the antivirus stage, only to attribute time
to it; `--profile FILE` runs the pipeline phase of the main process under cProfile (slower: compare ratios without).

Run: `.venv/bin/python benchmarks/routing_throughput.py [--quick] [--files N] [--size MB] [--processes 1,2]
[--concurrency 4,8] [--workers 4] [--source-concurrency 2] [--sweep 1.0] [--scan on,off] [--transfers 4]
[--timeout S] [--profile FILE] [--inputs DIR]`. Needs rclone (apt package rclone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func, select

from auxip.ingest.models import TERMINAL, IngestItem
from auxip.routing.models import RouteDelivery
from auxip_testing.clamd import ClamdServer, run_clamd, write_clamdscan_config
from auxip_testing.ingest import md5_of, pipeline_config, running_pipeline
from auxip_testing.process import daemon_cpu_seconds
from auxip_testing.sftp import SftpServer, run_sftp

MB = 1_000_000
TARGETS = 3
TARGET_RATIO = 0.9
PROGRESS_SECONDS = 10.0
POLL_SECONDS = 0.1
#: Files per target whose MD5 is checked after each phase (sizes are checked for all).
MD5_SAMPLE = 20
SOURCE = "outbox"
ROUTE = "fan-out"


@dataclass(frozen=True)
class Inputs:
    directory: Path
    names: list[str]
    size: int

    @property
    def total_bytes(self) -> int:
        return len(self.names) * self.size


@dataclass(frozen=True)
class Setting:
    processes: int
    concurrency: int
    workers: int
    source_concurrency: int
    #: False only to attribute time to the antivirus stage: routed files are never sent unscanned in production.
    scan: bool
    sweep: float

    def describe(self) -> str:
        return (
            f"ingest.processes={self.processes}, targets[].concurrency={self.concurrency}, "
            f"ingest.workers={self.workers}, sources[].concurrency={self.source_concurrency}, "
            f"ingest.sweep_seconds={self.sweep:g}" + ("" if self.scan else ", scanner: disabled")
        )


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of one phase: this process (with its reaped children), clamd, and the three sshd."""

    own: float
    clamd: float
    sshd: float

    def describe(self) -> str:
        return f"CPU: own {self.own:6.1f} s, clamd {self.clamd:5.1f} s, sshd {self.sshd:5.1f} s"


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: Cpu

    def rates(self, inputs: Inputs) -> str:
        deliveries = len(inputs.names) * TARGETS
        return (
            f"{self.seconds:7.2f} s  {deliveries / self.seconds:7.1f} deliveries/s  "
            f"{inputs.total_bytes * TARGETS / MB / self.seconds:6.1f} MB/s   {self.cpu.describe()}"
        )


@dataclass(frozen=True)
class Latencies:
    #: discovered -> planned: fetch, scan and the MD5 of the routing stage, with their queues.
    staged: list[float]
    #: planned -> delivered: the target loop's claim and the upload.
    planned: list[float]
    #: discovered -> delivered.
    triggered: list[float]


# --- inputs --------------------------------------------------------------------------------------------------------


def prepared_inputs(root: Path, count: int, size: int) -> Inputs:
    """`count` files of `size` random bytes under `root/files`, reused while count and size match."""
    directory, marker = root / "files", root / "files.json"
    names = [f"MPL_ROUTE_{index:05d}.bin" for index in range(count)]
    parameters = {"count": count, "size": size}
    reusable = marker.exists() and json.loads(marker.read_text()) == parameters
    if reusable and all((directory / name).is_file() for name in names):
        print(f"inputs: reusing {count} files of {size / MB:g} MB in {directory}")
        return Inputs(directory, names, size)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    for name in names:
        (directory / name).write_bytes(os.urandom(size))  # incompressible: no transport gets a free ride
    marker.write_text(json.dumps(parameters))
    print(f"inputs: wrote {count} files of {size / MB:g} MB in {time.perf_counter() - started:.1f} s, in {directory}")
    return Inputs(directory, names, size)


def read_once(inputs: Inputs) -> None:
    """Both contenders read from the page cache."""
    for name in inputs.names:
        (inputs.directory / name).read_bytes()


# --- CPU accounting --------------------------------------------------------------------------------------------------


def _own_cpu() -> float:
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


@dataclass(frozen=True)
class Meters:
    clamd_pid: Path
    sshd_pids: list[Path]

    def read(self) -> tuple[float, float, float]:
        return _own_cpu(), daemon_cpu_seconds(self.clamd_pid), sum(daemon_cpu_seconds(path) for path in self.sshd_pids)

    def since(self, before: tuple[float, float, float]) -> Cpu:
        # sshd adds a session's time to its own when it reaps it: give the per-connection processes a moment.
        time.sleep(0.5)
        after = self.read()
        own, clamd, sshd = (a - b for a, b in zip(after, before, strict=True))
        return Cpu(own, clamd, sshd)


# --- targets and verification ----------------------------------------------------------------------------------------


def fresh_dirs(servers: Sequence[SftpServer], label: str) -> list[Path]:
    directories = []
    for server in servers:
        directory = server.root / f"{label}-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        directories.append(directory)
    return directories


def verify(inputs: Inputs, directories: Sequence[Path], what: str) -> None:
    """Every target holds exactly the N files, with the right sizes; a sample has the right MD5."""
    sample = inputs.names[:: max(1, len(inputs.names) // MD5_SAMPLE)][:MD5_SAMPLE]
    expected = {name: md5_of(inputs.directory / name) for name in sample}
    for directory in directories:
        found = {entry.name: entry.stat().st_size for entry in os.scandir(directory)}
        if sorted(found) != sorted(inputs.names):
            extra, missing = set(found) - set(inputs.names), set(inputs.names) - set(found)
            raise RuntimeError(f"{what}: {directory} has {len(extra)} unexpected, {len(missing)} missing files")
        wrong = [name for name, size in found.items() if size != inputs.size]
        if wrong:
            raise RuntimeError(f"{what}: {directory} has {len(wrong)} files of the wrong size, e.g. {wrong[0]}")
        bad = [name for name in sample if md5_of(directory / name) != expected[name]]
        if bad:
            raise RuntimeError(f"{what}: {directory} has other bytes than the source in {bad}")


def _delivered_files(directories: Sequence[Path]) -> int:
    return sum(sum(1 for entry in os.scandir(directory) if not entry.name.startswith(".")) for directory in directories)


# --- the baseline ----------------------------------------------------------------------------------------------------


def _rclone_environment(servers: Sequence[SftpServer]) -> dict[str, str]:
    environment = {**os.environ, "RCLONE_CONFIG": "/dev/null"}
    for index, server in enumerate(servers, start=1):
        prefix = f"RCLONE_CONFIG_T{index}_"
        environment.update(
            {
                f"{prefix}TYPE": "sftp",
                f"{prefix}HOST": server.host,
                f"{prefix}PORT": str(server.port),
                f"{prefix}USER": server.username,
                f"{prefix}KEY_FILE": str(server.private_key),
                f"{prefix}KNOWN_HOSTS_FILE": str(server.known_hosts),
                # internal-sftp runs no commands: without these rclone would try `md5sum` and `echo` per session.
                f"{prefix}SHELL_TYPE": "none",
                f"{prefix}DISABLE_HASHCHECK": "true",
            }
        )
    return environment


def run_baseline(inputs: Inputs, servers: Sequence[SftpServer], meters: Meters, transfers: int, timeout: float) -> Run:
    directories = fresh_dirs(servers, "rclone")
    environment = _rclone_environment(servers)
    before = meters.read()
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            ["rclone", "copy", str(inputs.directory), f"t{index}:{directory}", "--transfers", str(transfers), "-q"],
            stdin=subprocess.DEVNULL,
            env=environment,
        )
        for index, directory in enumerate(directories, start=1)
    ]
    try:
        deadline = started + timeout
        for process in processes:
            while True:
                try:
                    process.wait(PROGRESS_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.perf_counter() - started
                    if elapsed > timeout:
                        raise TimeoutError(f"baseline not done within {timeout} s") from None
                    done = _delivered_files(directories)
                    print(f"  baseline: {done}/{len(inputs.names) * TARGETS} after {elapsed:.0f} s", flush=True)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"baseline not done within {timeout} s")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    seconds = time.perf_counter() - started
    run = Run(seconds, meters.since(before))
    codes = [process.returncode for process in processes]
    if any(codes):
        raise RuntimeError(f"rclone failed: exit codes {codes}")
    verify(inputs, directories, "baseline")
    for directory in directories:
        shutil.rmtree(directory)
    return run


def run_scan_baseline(inputs: Inputs, clamd: ClamdServer, meters: Meters, work: Path) -> Run:
    """`clamdscan --stream` of every file, `-P <cores>` batches at once: the antivirus step rclone leaves out."""
    conf = write_clamdscan_config(clamd, work / "clamdscan.conf")
    listing = work / "scan-inputs"
    listing.write_bytes(b"".join(os.fsencode(inputs.directory / name) + b"\0" for name in inputs.names))
    command = ["xargs", "-0", "-a", str(listing), "-n", "50", "-P", str(os.cpu_count() or 1)]
    command += ["clamdscan", f"--config-file={conf}", "--stream", "--quiet", "--no-summary"]
    before = meters.read()
    started = time.perf_counter()
    subprocess.run(command, stdin=subprocess.DEVNULL, check=True)
    return Run(time.perf_counter() - started, meters.since(before))


# --- the pipeline ----------------------------------------------------------------------------------------------------


def _credentials(work: Path, server: SftpServer) -> str:
    path = work / f"credentials-{server.port}.yaml"
    path.write_text(yaml.safe_dump({"private_key": str(server.private_key), "known_hosts": str(server.known_hosts)}))
    path.chmod(0o600)
    return f"file:{path}"


def _route(work: Path, servers: Sequence[SftpServer], directories: Sequence[Path], concurrency: int) -> dict[str, Any]:
    targets = [
        {
            "name": f"t{index}",
            "url": f"sftp://{server.username}@{server.host}:{server.port}{directory}",
            "credentials": _credentials(work, server),
            "concurrency": concurrency,
        }
        for index, (server, directory) in enumerate(zip(servers, directories, strict=True), start=1)
    ]
    return {"name": ROUTE, "trigger": {"source": SOURCE}, "targets": targets}


def _progress(engine: Engine) -> tuple[dict[str, int], int]:
    with engine.connect() as conn:
        rows = conn.execute(select(IngestItem.state, func.count()).group_by(IngestItem.state))
        items = {str(state): int(count) for state, count in rows}
        delivered = conn.execute(
            select(func.count()).select_from(RouteDelivery).where(RouteDelivery.state == "delivered")
        ).scalar_one()
    return items, int(delivered)


async def _until_routed(engine: Engine, expected: int, started: float, timeout: float) -> None:
    last_report = started
    while True:
        items, delivered = _progress(engine)
        if sum(items.values()) >= expected and all(state in TERMINAL for state in items):
            if items.get("routed") != expected:
                raise RuntimeError(f"pipeline settled without routing every file: {items}")
            return
        now = time.perf_counter()
        if now - started > timeout:
            raise TimeoutError(f"pipeline not done within {timeout} s: items {items}, {delivered} delivered")
        if now - last_report >= PROGRESS_SECONDS:
            last_report = now
            states = ", ".join(f"{state} {count}" for state, count in sorted(items.items()))
            print(f"  pipeline after {now - started:.0f} s: {states}; {delivered} deliveries done", flush=True)
        await asyncio.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _service_output_to(path: Path) -> Iterator[None]:
    """The service's log (helper processes log every retry at INFO to their standard output, inherited from this
    one) goes to a file; this process's prints still reach the console."""
    console = sys.stdout
    console.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with path.open("ab") as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
    sys.stdout = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = console
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _report_log(path: Path) -> None:
    lines = path.read_text(errors="replace").splitlines()
    problems = [line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line]
    print(f"  service log: {len(lines)} lines, {len(problems)} warnings or errors", flush=True)
    for line in problems[:10]:
        print(f"    {line[:200]}")
    path.unlink()


def _latencies(engine: Engine) -> Latencies:
    with engine.connect() as conn:
        discovered = {
            f"item:{item_id}": at for item_id, at in conn.execute(select(IngestItem.id, IngestItem.discovered_at))
        }
        rows = conn.execute(select(RouteDelivery.file_key, RouteDelivery.created_at, RouteDelivery.delivered_at))
        pairs: list[tuple[datetime, datetime, datetime]] = [
            (discovered[key], created, delivered) for key, created, delivered in rows if delivered is not None
        ]
    return Latencies(
        staged=[(created - found).total_seconds() for found, created, _ in pairs],
        planned=[(delivered - created).total_seconds() for _, created, delivered in pairs],
        triggered=[(delivered - found).total_seconds() for found, _, delivered in pairs],
    )


async def _pipeline(config: Any, expected: int, timeout: float) -> tuple[float, Latencies]:
    started = time.perf_counter()
    async with running_pipeline(config) as engine:
        await _until_routed(engine, expected, started, timeout)
        seconds = time.perf_counter() - started
        latencies = _latencies(engine)
    return seconds, latencies


def run_pipeline(
    inputs: Inputs,
    servers: Sequence[SftpServer],
    clamd: ClamdServer,
    meters: Meters,
    work: Path,
    setting: Setting,
    timeout: float,
    profile: Path | None,
) -> tuple[Run, Latencies]:
    data_dir = work / "pipeline-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    directories = fresh_dirs(servers, "pipeline")
    source = {
        "name": SOURCE,
        "url": inputs.directory.as_uri(),
        "poll_interval": 30,
        "settle_seconds": 2,
        "concurrency": setting.source_concurrency,
    }
    ingest = {
        "workers": setting.workers,
        "processes": setting.processes,
        "sweep_seconds": setting.sweep,
        "lease_seconds": 60,
        "retry_base_seconds": 2.0,
        "retry_max_seconds": 600.0,
        "circuit_open_seconds": 30.0,
    }
    scanner = {"url": f"tcp://{clamd.host}:{clamd.port}"} if setting.scan else "disabled"
    config = pipeline_config(
        data_dir, [source], scanner, ingest=ingest, log_format="text",
        routes=[_route(work, servers, directories, setting.concurrency)],
    )  # fmt: skip
    before = meters.read()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    log = work / "pipeline.log"
    try:
        with _service_output_to(log):
            seconds, latencies = asyncio.run(_pipeline(config, len(inputs.names), timeout))
    finally:
        _report_log(log)
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
    run = Run(seconds, meters.since(before))
    verify(inputs, directories, "pipeline")
    if len(latencies.planned) != len(inputs.names) * TARGETS:
        raise RuntimeError(f"pipeline: {len(latencies.planned)} deliveries recorded, expected {len(inputs.names) * 3}")
    for directory in directories:
        shutil.rmtree(directory)
    shutil.rmtree(data_dir)
    if profiler and profile:
        print(f"  cProfile of the main process written to {profile}; top functions by own time:")
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(15)
    return run, latencies


# --- the comparison --------------------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:6.3f} s  p95 {cuts[94]:6.3f} s  max {max(values):6.3f} s"


def compare(
    inputs: Inputs, servers: Sequence[SftpServer], work: Path, setting: Setting, args: argparse.Namespace
) -> float:
    print(f"\n{setting.describe()}; {len(inputs.names)} files x {TARGETS} targets", flush=True)
    sshd_pids = [server.root.parent / "sshd.pid" for server in servers]
    read_once(inputs)
    os.sync()
    # A fresh clamd per phase: clamd caches the MD5s of clean files, so a second scan of the same set costs a fifth.
    with run_clamd() as clamd:
        meters = Meters(clamd.pid_file, sshd_pids)
        print(f"  baseline: {TARGETS} x rclone copy --transfers {args.transfers} in parallel ...", flush=True)
        baseline = run_baseline(inputs, servers, meters, args.transfers, args.timeout)
        scan = None
        if setting.scan:
            print("  baseline with antivirus: clamdscan --stream of the set ...", flush=True)
            scan = run_scan_baseline(inputs, clamd, meters, work)
    os.sync()
    print("  pipeline: IngestService, local source -> clamd -> route with 3 SFTP targets ...", flush=True)
    with run_clamd() as clamd:
        meters = Meters(clamd.pid_file, sshd_pids)
        pipeline, latencies = run_pipeline(inputs, servers, clamd, meters, work, setting, args.timeout, args.profile)
    os.sync()
    ratio = baseline.seconds / pipeline.seconds
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    total_cpu = pipeline.cpu.own + pipeline.cpu.clamd + pipeline.cpu.sshd
    print(f"  baseline  {baseline.rates(inputs)}")
    if scan is not None:
        print(f"  clamdscan {scan.seconds:7.2f} s of the set, then the copies; {scan.cpu.describe()}")
    print(f"  pipeline  {pipeline.rates(inputs)}")
    print(
        f"  antivirus: clamd {pipeline.cpu.clamd:.1f} CPU s = {pipeline.cpu.clamd / total_cpu:.0%} of the phase's CPU"
    )
    print(f"  latency trigger (discovered) -> delivered: {_percentiles(latencies.triggered)}")
    print(f"    of which discovered -> planned:          {_percentiles(latencies.staged)}")
    print(f"    and planned -> delivered:                {_percentiles(latencies.planned)}")
    print(f"  ratio pipeline/baseline (deliveries/s): {ratio:.2f}   target >= {TARGET_RATIO}: {verdict}")
    if scan is not None:
        # Not the ratio: rclone scans nothing, the platform must. Same work on both sides.
        print(f"  ratio pipeline/(clamdscan then rclone): {(scan.seconds + baseline.seconds) / pipeline.seconds:.2f}")
    return ratio


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=float, default=1.0, help="MB per file")
    parser.add_argument("--quick", action="store_true", help="200 files")
    parser.add_argument("--processes", type=_ints, default=[1], help="ingest.processes, a comma list to compare")
    parser.add_argument("--concurrency", type=_ints, default=[4], help="targets[].concurrency, a comma list")
    parser.add_argument("--workers", type=_ints, default=[4], help="ingest.workers, a comma list")
    parser.add_argument("--source-concurrency", type=_ints, default=[2], help="sources[].concurrency, a comma list")
    parser.add_argument(
        "--scan", type=lambda text: [part == "on" for part in text.split(",")], default=[True],
        help="on, off or on,off: the antivirus stage (off only to measure its share)",
    )  # fmt: skip
    parser.add_argument(
        "--sweep", type=lambda text: [float(part) for part in text.split(",")], default=[1.0],
        help="ingest.sweep_seconds (also the delivery loops' idle wait), a comma list",
    )  # fmt: skip
    parser.add_argument("--transfers", type=int, default=4, help="rclone --transfers per target")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per phase")
    parser.add_argument("--profile", type=Path, help="cProfile the pipeline's main process into this file")
    parser.add_argument("--inputs", type=Path, default=Path(tempfile.gettempdir()) / "auxip-bench-routing-inputs")
    args = parser.parse_args()
    if args.quick:
        args.files = 200
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is missing for the baseline: apt-get install rclone")
    print(f"{os.cpu_count()} cores; inputs cached in {args.inputs} (delete it to free the space)")
    args.inputs.mkdir(parents=True, exist_ok=True)
    inputs = prepared_inputs(args.inputs, args.files, int(args.size * MB))
    settings = [
        Setting(*values)
        for values in itertools.product(
            args.processes, args.concurrency, args.workers, args.source_concurrency, args.scan, args.sweep
        )
    ]
    results: list[tuple[Setting, float]] = []
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(run_sftp()) for _ in range(TARGETS)]
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auxip-bench-routing-", dir=args.inputs)))
        print(f"sshd on ports {', '.join(str(server.port) for server in servers)}")
        print(subprocess.run(["rclone", "version"], capture_output=True, text=True, check=True).stdout.splitlines()[0])
        for setting in settings:
            results.append((setting, compare(inputs, servers, work, setting, args)))
    if len(results) > 1:
        print("\nsummary (ratio pipeline/baseline):")
        for setting, ratio in results:
            print(f"  {setting.describe():55s} {ratio:.2f}")
        best = max(results, key=lambda result: result[1])
        print(f"  best: {best[0].describe()} ({best[1]:.2f})")


if __name__ == "__main__":
    main()

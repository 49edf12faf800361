"""Ingestion throughput: a local source end-to-end to published, against a shell pipeline of standard tools.

Targets (issue): 10,000 small inputs (10 KB-1 MB, log-uniform) at >= 3x the baseline's files/s, and 20 inputs of
200 MB at >= 1x. Inputs come from `auxip_testing.sample_feed`: the small set is `feed()` (the operational mix: EOF
and SAFE, some tgz); the large set is SAFE products of the netCDF types (AUX_WND/WAV/ICE) whose payload is random
bytes, as compressed netCDF4 is: the worst case for deflate, and 10x faster to generate than 200 MB of EOF XML.
Inputs are generated once into `--inputs DIR` and reused by later runs with the same parameters.

Baseline, per input, with `xargs -P <jobs>` (default: the number of cores, which is the pipeline's effective
parallelism, since its stages are CPU-bound in threads of one process): `cp -r` to a staging dir, `md5sum` of its
files, `clamdscan --stream` (a harness clamd), `zip -q -r <name>.zip`, `md5sum` of the zip. Pipeline: the real
`IngestService` on a fresh data dir (SQLite catalog, local storage, embedded bus) with a local source over the
input directory and a fresh clamd of the same configuration; timed from the service's start until every item is in
a terminal state. Both read inputs from the page cache (they are read once before timing) and write to the same
filesystem, with a sync between phases so neither pays for the other's writeback.

Run: `.venv/bin/python benchmarks/ingest_throughput.py [--quick] [--small N] [--large N] [--large-size MB]
[--large-kind safe|eof] [--catalog sqlite|postgres] [--workers N] [--concurrency N] [--jobs N] [--inputs DIR]`.
Needs clamdscan and zip (apt packages clamdscan, zip).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from auxip.ingest.models import TERMINAL, IngestItem
from auxip.ingest.service import stage_counts
from auxip_testing.clamd import ClamdServer, run_clamd, write_clamdscan_config
from auxip_testing.ingest import pipeline_config, published, running_pipeline
from auxip_testing.postgres import PostgresServer, run_postgres
from auxip_testing.process import daemon_cpu_seconds
from auxip_testing.sample_feed import feed, input_size, write_eof, write_safe

MB = 1_000_000
SMALL_SIZES = (10_000, 1_000_000)
LARGE_TYPES = ("AUX_WND", "AUX_WAV", "AUX_ICE")
# An OSV record of write_eof is about this long: how many make a large EOF file of the requested size.
OSV_BYTES = 470
LARGE_START = datetime(2026, 6, 1, tzinfo=UTC)
# Room for the manifest, so that manifest + payload come close to the requested size.
MANIFEST_BYTES = 4_000
PROGRESS_SECONDS = 10.0

BASELINE_SCRIPT = """\
#!/usr/bin/env bash
# One input through the baseline: copy to staging, MD5, clamd scan of the stream, zip, MD5 of the zip.
set -euo pipefail
src=$1
name=${src##*/}
stage=$STAGING/$name
cp -r "$src" "$stage"
find "$stage" -type f -exec md5sum {} + >/dev/null
clamdscan --config-file="$CLAMDSCAN_CONF" --stream --quiet --no-summary "$stage"
(cd "$STAGING" && zip -q -r "$OUTPUT/$name.zip" "$name")
md5sum "$OUTPUT/$name.zip" >/dev/null
rm -rf "$stage"
"""


@dataclass(frozen=True)
class InputSet:
    label: str
    directory: Path
    paths: list[Path]
    total_bytes: int


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    clamd_cpu_seconds: float

    def rates(self, inputs: InputSet) -> str:
        return (
            f"{self.seconds:8.1f} s  {len(inputs.paths) / self.seconds:8.1f} files/s  "
            f"{inputs.total_bytes / MB / self.seconds:7.1f} MB/s   CPU: own {self.cpu_seconds:6.1f} s, "
            f"clamd {self.clamd_cpu_seconds:5.1f} s"
        )


@dataclass(frozen=True)
class PipelineSettings:
    workers: int
    concurrency: int
    processes: int
    #: None: the default SQLite catalog in the data dir; else a PostgreSQL cluster that gets a new database per run.
    postgres: PostgresServer | None

    def describe(self) -> str:
        catalog = "SQLite" if self.postgres is None else "PostgreSQL (harness cluster: fsync off)"
        return (
            f"{catalog} catalog, ingest.workers={self.workers}, ingest.processes={self.processes}, "
            f"sources[].concurrency={self.concurrency}, "
            "sweep_seconds=1.0, lease_seconds=60, poll_interval=30, settle_seconds=2 (defaults otherwise)"
        )


# --- inputs --------------------------------------------------------------------------------------------------------


def _with_progress(label: str, directory: Path, expected: int, work: Callable[[], list[Path]]) -> list[Path]:
    """Run a generator in a thread and report how many entries it has written so far."""
    result: list[list[Path]] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(work())
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    thread = threading.Thread(target=target, name=f"generate-{label}")
    thread.start()
    while thread.is_alive():
        thread.join(PROGRESS_SECONDS)
        if thread.is_alive():
            done = sum(1 for entry in os.scandir(directory) if not entry.name.startswith("."))
            print(f"  generating {label}: {done}/{expected} after {time.perf_counter() - started:.0f} s", flush=True)
    if errors:
        raise errors[0]
    return result[0]


def _large(directory: Path, count: int, size: int, kind: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        generated = LARGE_START + timedelta(hours=6 * index)
        start = generated - timedelta(hours=3)
        stop = start + timedelta(hours=6)
        if kind == "eof":
            paths.append(write_eof(directory, "AUX_RESORB", "A", generated, start, stop, osv_count=size // OSV_BYTES))
        else:
            product_type = LARGE_TYPES[index % len(LARGE_TYPES)]
            paths.append(write_safe(directory, product_type, None, generated, start, stop, size - MANIFEST_BYTES))
    return paths


def prepared_inputs(root: Path, label: str, parameters: dict[str, int], make: Callable[[Path], list[Path]]) -> InputSet:
    """The inputs of `parameters` under `root/label`, generated unless a previous run left the same ones."""
    directory = root / label
    marker = root / f"{label}.json"
    if marker.exists() and json.loads(marker.read_text()).get("parameters") == parameters:
        names = json.loads(marker.read_text())["names"]
        paths = [directory / name for name in names]
        if all(path.exists() for path in paths):
            total = sum(input_size(path) for path in paths)
            print(f"{label}: reusing {len(paths)} inputs, {total / MB:.0f} MB, in {directory}")
            return InputSet(label, directory, paths, total)
    shutil.rmtree(directory, ignore_errors=True)
    marker.unlink(missing_ok=True)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    paths = _with_progress(label, directory, parameters["count"], lambda: make(directory))
    total = sum(input_size(path) for path in paths)
    elapsed = time.perf_counter() - started
    print(f"{label}: generated {len(paths)} inputs, {total / MB:.0f} MB in {elapsed:.0f} s, in {directory}")
    marker.write_text(json.dumps({"parameters": parameters, "names": [path.name for path in paths]}))
    return InputSet(label, directory, paths, total)


def read_once(inputs: InputSet) -> None:
    """Read every input so both contenders start from the page cache."""
    for path in inputs.paths:
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            with file.open("rb") as handle:
                while handle.read(16 * MB):
                    pass


# --- CPU accounting --------------------------------------------------------------------------------------------------


def _own_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# --- the baseline ----------------------------------------------------------------------------------------------------


def _count_zips(directory: Path) -> int:
    # zip writes a temporary file next to its output first: only finished archives count.
    return sum(1 for entry in os.scandir(directory) if entry.name.endswith(".zip"))


@dataclass(frozen=True)
class Baseline:
    """The baseline script and its environment: staging and output dirs, a clamdscan config for the harness clamd."""

    script: Path
    staging: Path
    output: Path
    environment: dict[str, str]

    def one(self, path: Path) -> None:
        subprocess.run(["bash", str(self.script), str(path)], env=self.environment, check=True)

    def remove_outputs(self) -> None:
        shutil.rmtree(self.output)
        shutil.rmtree(self.staging)


def baseline(work: Path, clamd: ClamdServer) -> Baseline:
    staging, output = work / "baseline-staging", work / "baseline-output"
    for directory in (staging, output):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    script = work / "baseline.sh"
    script.write_text(BASELINE_SCRIPT)
    conf = write_clamdscan_config(clamd, work / "clamdscan.conf")
    environment = {**os.environ, "STAGING": str(staging), "OUTPUT": str(output), "CLAMDSCAN_CONF": str(conf)}
    return Baseline(script, staging, output, environment)


def run_baseline(inputs: InputSet, work: Path, clamd: ClamdServer, jobs: int) -> Run:
    tools = baseline(work, clamd)
    # A file, not a pipe: xargs reads its input as it goes, and writing to a pipe would block until near the end.
    listing = work / "baseline-inputs"
    listing.write_bytes(b"".join(os.fsencode(path) + b"\0" for path in inputs.paths))
    clamd_before, children_before = daemon_cpu_seconds(clamd.pid_file), _own_cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        ["xargs", "-0", "-a", str(listing), "-n", "1", "-P", str(jobs), "bash", str(tools.script)],
        stdin=subprocess.DEVNULL,
        env=tools.environment,
    )
    while True:
        try:
            process.wait(PROGRESS_SECONDS)
            break
        except subprocess.TimeoutExpired:
            elapsed = time.perf_counter() - started
            zipped = _count_zips(tools.output)
            print(f"  baseline: {zipped}/{len(inputs.paths)} zipped after {elapsed:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    run = Run(
        seconds,
        _own_cpu(resource.RUSAGE_CHILDREN) - children_before,
        daemon_cpu_seconds(clamd.pid_file) - clamd_before,
    )
    zipped = _count_zips(tools.output)
    if process.returncode != 0 or zipped != len(inputs.paths):
        raise RuntimeError(f"baseline failed: exit code {process.returncode}, {zipped}/{len(inputs.paths)} zips")
    tools.remove_outputs()
    return run


# --- the pipeline ----------------------------------------------------------------------------------------------------


def _unsettled(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(IngestItem)).scalar_one()
        pending = conn.execute(
            select(func.count()).select_from(IngestItem).where(IngestItem.state.not_in(TERMINAL))
        ).scalar_one()
    return int(total), int(pending)


async def _until_settled(engine: Engine, expected: int, started: float) -> None:
    last_report = time.perf_counter()
    while True:
        total, pending = _unsettled(engine)
        if total >= expected and pending == 0:
            return
        if time.perf_counter() - last_report >= PROGRESS_SECONDS:
            last_report = time.perf_counter()
            counts = ", ".join(f"{state} {count}" for state, count in sorted(stage_counts(engine).items()))
            print(f"  pipeline after {last_report - started:.0f} s: {counts}", flush=True)
        # Counting runs on the pipeline's own loop: poll gently, or the benchmark slows what it measures.
        await asyncio.sleep(0.25)


async def run_pipeline(inputs: InputSet, work: Path, clamd: ClamdServer, settings: PipelineSettings) -> Run:
    data_dir = work / "pipeline-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    source = {
        "name": "local",
        "url": inputs.directory.as_uri(),
        "poll_interval": 30,
        "settle_seconds": 2,
        "concurrency": settings.concurrency,
    }
    ingest = {
        "workers": settings.workers,
        "processes": settings.processes,
        "sweep_seconds": 1.0,
        "lease_seconds": 60,
        "retry_base_seconds": 2.0,
        "retry_max_seconds": 600.0,
        "circuit_open_seconds": 30.0,
    }
    scanner = {"url": f"tcp://{clamd.host}:{clamd.port}"}
    catalog = {} if settings.postgres is None else {"url": settings.postgres.create_database("ingest").sqlalchemy_url}
    config = pipeline_config(data_dir, [source], scanner, ingest=ingest, catalog=catalog, log_format="text")
    clamd_before, own_before = daemon_cpu_seconds(clamd.pid_file), _own_cpu(resource.RUSAGE_SELF)
    started = time.perf_counter()
    async with running_pipeline(config) as engine:
        await _until_settled(engine, len(inputs.paths), started)
        seconds = time.perf_counter() - started
        run = Run(
            seconds, _own_cpu(resource.RUSAGE_SELF) - own_before, daemon_cpu_seconds(clamd.pid_file) - clamd_before
        )
        counts = stage_counts(engine)
        products = published(engine)
    if counts.get("announced") != len(inputs.paths) or len(products) != len(inputs.paths):
        raise RuntimeError(f"pipeline did not publish every input: {counts}, {len(products)} products")
    shutil.rmtree(data_dir)
    return run


# --- the comparison --------------------------------------------------------------------------------------------------


def compare(inputs: InputSet, work: Path, jobs: int, settings: PipelineSettings, target: float) -> float:
    print(f"\n{inputs.label}: {len(inputs.paths)} inputs, {inputs.total_bytes / MB:.0f} MB")
    read_once(inputs)
    os.sync()
    print(f"  baseline (xargs -P {jobs}: cp, md5sum, clamdscan --stream, zip, md5sum) ...", flush=True)
    # A fresh clamd per phase: clamd caches the MD5s of clean files, and the pipeline scanning what the baseline has
    # just scanned costs clamd a quarter of a real scan.
    with run_clamd() as clamd:
        print(f"  clamd {clamd.version} on port {clamd.port}", flush=True)
        baseline = run_baseline(inputs, work, clamd, jobs)
    os.sync()
    print(f"  pipeline ({settings.describe()}) ...", flush=True)
    with run_clamd() as clamd:
        pipeline = asyncio.run(run_pipeline(inputs, work, clamd, settings))
    os.sync()
    ratio = baseline.seconds / pipeline.seconds
    verdict = "PASS" if ratio >= target else "FAIL"
    print(f"  baseline  {baseline.rates(inputs)}")
    print(f"  pipeline  {pipeline.rates(inputs)}")
    print(f"  ratio pipeline/baseline (files/s): {ratio:.2f}   target >= {target:.1f}: {verdict}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=10_000, help="small inputs (10 KB-1 MB)")
    parser.add_argument("--large", type=int, default=20, help="large inputs")
    parser.add_argument("--large-size", type=int, default=200, help="MB per large input")
    parser.add_argument("--quick", action="store_true", help="500 small and 2 large inputs of 50 MB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="ingest.workers (parallel items per stage)")
    parser.add_argument("--concurrency", type=int, default=2, help="the local source's fetch concurrency")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="ingest.processes (stage processes)")
    parser.add_argument("--large-kind", choices=("safe", "eof"), default="safe", help="netCDF SAFE or EOF XML")
    parser.add_argument("--catalog", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel baseline pipelines")
    parser.add_argument("--inputs", type=Path, default=Path(tempfile.gettempdir()) / "auxip-bench-ingest-inputs")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.large_size = 500, 2, 50
    missing = [tool for tool in ("clamdscan", "zip", "md5sum", "xargs") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing tools for the baseline: {', '.join(missing)} (apt-get install clamdscan zip)")
    print(f"{os.cpu_count()} cores; inputs cached in {args.inputs} (delete it to free the space)")
    args.inputs.mkdir(parents=True, exist_ok=True)
    sets = []
    if args.small:
        small = {"count": args.small, "seed": args.seed, "low": SMALL_SIZES[0], "high": SMALL_SIZES[1]}
        sets.append(
            (
                prepared_inputs(
                    args.inputs, "small", small, lambda d: feed(d, args.small, seed=args.seed, sizes=SMALL_SIZES)
                ),
                3.0,
            )
        )
    if args.large:
        large = {"count": args.large, "size_mb": args.large_size}
        size, kind = args.large_size * MB, args.large_kind
        label = f"large-{kind}"
        sets.append((prepared_inputs(args.inputs, label, large, lambda d: _large(d, args.large, size, kind)), 1.0))
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auxip-bench-ingest-", dir=args.inputs)))
        postgres = stack.enter_context(run_postgres()) if args.catalog == "postgres" else None
        settings = PipelineSettings(args.workers, args.concurrency, args.processes, postgres)
        for inputs, target in sets:
            compare(inputs, work, args.jobs, settings, target)


if __name__ == "__main__":
    main()

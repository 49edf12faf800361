"""Scale-out: throughput with 1 and 2 processes of a role in the same run, and catalog claims under 4 workers.

Issue target: adding a process of a role does not lower its throughput (2 cores: do not expect 2x), and contention on
the catalog does not grow with the number of workers. Three measurements, each printed as a ratio of this run:

1. Ingestion: the same `--inputs` small inputs (the operational mix of `sample_feed.feed`) from a local source to
   published, by 1 and then 2 `auxip serve --role ingest` processes on one PostgreSQL catalog, shared local storage
   and a real clamd; files/s and the ratio. Contention is sampled from `pg_stat_activity` every 50 ms: the share of
   samples in which a catalog session waited on a lock.
2. OData: `PublicationDate gt <t>` pages of 100 (the pollers' query) against the catalog phase 1 filled, by
   `--clients` client processes for `--seconds`, through 1 and then 2 `auxip serve --role api` processes (clients
   alternate between them, as a Service would); requests/s and the ratio.
3. Claims: `--claim-items` due items claimed 8 at a time and moved on by 1 and by 4 worker processes (the pipeline's
   own `claim` and `advance`): p50/p95 latency of one claim, how many items were claimed twice (must be 0) and the
   share of lock-wait samples (claims skip locked rows, so workers should never wait for each other).

Run: `.venv/bin/python benchmarks/scale_out.py [--inputs N] [--clients N] [--seconds S] [--claim-items N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, insert, select, text

from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.ingest.models import TERMINAL, IngestItem
from auxip.ingest.state import advance, claim, utcnow
from auxip_testing.clamd import run_clamd
from auxip_testing.ingest import FAST
from auxip_testing.postgres import PostgresServer, run_postgres
from auxip_testing.process import free_port
from auxip_testing.sample_feed import feed
from auxip_testing.serve_processes import ServeProcess, serve_environment, start_serve, wait_until

USER = "bench"
LEASE = timedelta(seconds=60)


def _document(root: Path, name: str, catalog_url: str, inbox: Path, scanner: str) -> dict[str, Any]:
    return {
        "data_dir": str(root / name / "data"),
        "api": {"listen": f"127.0.0.1:{free_port()}"},
        "catalog": {"url": catalog_url, "migrate": False},
        # One products directory for every process: local storage shared as a bucket would be.
        "storage": {"url": (root / "products").as_uri()},
        "sources": [{"name": "local", "url": inbox.as_uri(), "poll_interval": 0.5, "settle_seconds": 0}],
        "scanner": {"url": scanner},
        "ingest": {**FAST, "lease_seconds": 30},
        "log_format": "json",
    }


@contextlib.contextmanager
def _processes(root: Path, documents: list[dict[str, Any]], role: str) -> Iterator[list[ServeProcess]]:
    processes = [
        start_serve(root, f"{role}-{index}-{uuid.uuid4().hex[:4]}", document, serve_environment(), roles=[role])
        for index, document in enumerate(documents)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


class LockSampler(threading.Thread):
    """The share of 50 ms samples in which some session of the catalog waited on a lock."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.samples = self.waiting = 0
        self.stop = threading.Event()

    def run(self) -> None:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                self.samples += 1
                self.waiting += bool(conn.execute(query).scalar_one())
                time.sleep(0.05)

    @property
    def share(self) -> float:
        return self.waiting / max(self.samples, 1)


def _settled(engine: Engine, expected: int) -> bool:
    with engine.connect() as conn:
        states = list(conn.execute(select(IngestItem.state)).scalars())
    return len(states) == expected and all(state in TERMINAL for state in states)


def ingest_phase(postgres: PostgresServer, inputs: Path, count: int, processes: int, scanner: str) -> dict[str, Any]:
    database = postgres.create_database(f"scale_ingest_{processes}")
    url = database.sqlalchemy_url
    upgrade(url)
    engine = make_engine(url)
    root = Path(tempfile.mkdtemp(prefix=f"auxip-bench-scale-{processes}-"))
    inbox = root / "inbox"
    shutil.copytree(inputs, inbox)
    (root / "products").mkdir()
    os.sync()
    documents = [_document(root, f"node{index}", url, inbox, scanner) for index in range(processes)]
    sampler = LockSampler(engine)
    try:
        with _processes(root, documents, "ingest") as nodes:
            started = time.monotonic()
            sampler.start()
            wait_until(lambda: _settled(engine, count), 1800, f"{count} inputs settled", nodes)
            elapsed = time.monotonic() - started
            sampler.stop.set()
            sampler.join()
    finally:
        engine.dispose()
    return {"processes": processes, "seconds": elapsed, "files_per_s": count / elapsed,
            "lock_wait_share": sampler.share, "catalog_url": url, "root": root}  # fmt: skip


def _client(args: tuple[list[str], str, list[str], float, int]) -> tuple[int, int]:
    """One poller process: `PublicationDate gt <random published date>` pages of 100, alternating the API processes."""
    urls, password, dates, seconds, seed = args
    rng = random.Random(seed)  # noqa: S311 - load pattern, not security
    session = requests.Session()
    session.auth = (USER, password)
    done = errors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        params = {"$filter": f"PublicationDate gt {rng.choice(dates)}", "$orderby": "PublicationDate asc",
                  "$top": "100"}  # fmt: skip
        response = session.get(f"{urls[done % len(urls)]}/odata/v1/Products", params=params, timeout=30)
        done += 1
        if response.status_code != 200:
            errors += 1
            if errors == 1:
                print(f"first error: {response.status_code} {response.text[:300]}", flush=True)
    return done, errors


def odata_phase(
    catalog_url: str, password: str, root: Path, processes: int, clients: int, seconds: float
) -> dict[str, Any]:
    engine = make_engine(catalog_url)
    with engine.connect() as conn:
        dates = [f"{d.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}" for d in
                 conn.execute(select(Product.publication_date)).scalars()]  # fmt: skip
    engine.dispose()
    documents = []
    for index in range(processes):
        document = _document(root, f"api{processes}-{index}", catalog_url, root / "inbox", "tcp://127.0.0.1:9")
        documents.append(document | {"sources": [], "scanner": "disabled"})
    with _processes(root, documents, "api") as apis:
        wait_until(lambda: all(_ready(api) for api in apis), 60, "APIs ready", apis)
        urls = [api.base_url for api in apis]
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            started = time.monotonic()
            results = pool.map(_client, [(urls, password, dates, seconds, seed) for seed in range(clients)])
            elapsed = time.monotonic() - started
    requests_done = sum(done for done, _ in results)
    return {"processes": processes, "requests_per_s": requests_done / elapsed,
            "errors": sum(errors for _, errors in results)}  # fmt: skip


def _ready(process: ServeProcess) -> bool:
    with contextlib.suppress(requests.ConnectionError):
        return requests.get(f"{process.base_url}/health/ready", timeout=5).ok
    return False


def _claim_worker(args: tuple[str, int]) -> tuple[list[float], list[int]]:
    """Claim 8 due items at a time and move each on, until none is left: (claim latencies, claimed item ids)."""
    url, index = args
    engine = make_engine(url)
    latencies: list[float] = []
    claimed: list[int] = []
    worker = f"bench:{os.getpid()}:claim{index}:x"
    while True:
        started = time.perf_counter()
        items = claim(engine, "scanned", worker, LEASE, 8)
        latencies.append(time.perf_counter() - started)
        if not items:
            break
        for item in items:
            advance(engine, item, worker, "duplicate")
            claimed.append(item.id)
    engine.dispose()
    return latencies[:-1], claimed


def claim_phase(postgres: PostgresServer, items: int, workers: int) -> dict[str, Any]:
    database = postgres.create_database(f"scale_claims_{workers}")
    url = database.sqlalchemy_url
    upgrade(url)
    engine = make_engine(url)
    now = utcnow()
    rows = [
        {"source": "bench", "path": f"/in/{index}", "name": f"item-{index}", "version": "1", "size": 1,
         "is_dir": False, "origin_date": now, "discovered_at": now, "updated_at": now, "state": "scanned",
         "attempts": 0, "next_attempt_at": now - timedelta(seconds=1), "details": "{}"}
        for index in range(items)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(IngestItem), rows)
    sampler = LockSampler(engine)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        sampler.start()
        results = pool.map(_claim_worker, [(url, index) for index in range(workers)])
        sampler.stop.set()
        sampler.join()
    engine.dispose()
    latencies = sorted(value for values, _ in results for value in values)
    claimed = [item for _, ids in results for item in ids]
    return {
        "workers": workers,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "claimed": len(claimed),
        "claimed_twice": len(claimed) - len(set(claimed)),
        "lock_wait_share": sampler.share,
    }


def _add_user(catalog_url: str) -> str:
    from auxip.auth import LocalIdentityStore, Role

    password = "bench-" + uuid.uuid4().hex[:12]
    engine = make_engine(catalog_url)
    LocalIdentityStore(engine).add_user(USER, password, frozenset({Role.DOWNLOAD}))
    engine.dispose()
    return password


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--claim-items", type=int, default=4000)
    args = parser.parse_args()
    print(f"scale-out benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="auxip-bench-scale-inputs-") as scratch:
        inputs = Path(scratch) / "inputs"
        feed(inputs, args.inputs, seed=15, sizes=(10_000, 200_000))
        with run_postgres() as postgres, run_clamd() as clamd:
            scanner = f"tcp://{clamd.host}:{clamd.port}"
            ingest = []
            for processes in (1, 2):
                result = ingest_phase(postgres, inputs, args.inputs, processes, scanner)
                ingest.append(result)
                share = 100 * result["lock_wait_share"]
                print(
                    f"ingest, {processes} process(es): {result['seconds']:.1f} s, "
                    f"{result['files_per_s']:.1f} files/s, lock waits in {share:.1f}% of samples",
                    flush=True,
                )
            catalog_url, root = ingest[-1]["catalog_url"], ingest[-1]["root"]
            password = _add_user(catalog_url)
            odata = []
            for processes in (1, 2):
                result = odata_phase(catalog_url, password, root, processes, args.clients, args.seconds)
                odata.append(result)
                print(f"odata, {processes} API process(es), {args.clients} clients: "
                      f"{result['requests_per_s']:.1f} requests/s, {result['errors']} errors", flush=True)  # fmt: skip
            claims = []
            for workers in (1, 4):
                result = claim_phase(postgres, args.claim_items, workers)
                claims.append(result)
                print(f"claims, {workers} worker(s): p50 {result['p50_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms, "
                      f"{result['claimed']} claimed, {result['claimed_twice']} twice, "
                      f"lock waits in {100 * result['lock_wait_share']:.1f}% of samples", flush=True)  # fmt: skip
            for result in ingest:
                shutil.rmtree(result.pop("root"), ignore_errors=True)
                result.pop("catalog_url")
    summary = {
        "ingest_ratio_2_vs_1": ingest[1]["files_per_s"] / ingest[0]["files_per_s"],
        "odata_ratio_2_vs_1": odata[1]["requests_per_s"] / odata[0]["requests_per_s"],
        "claim_p50_ratio_4_vs_1": claims[1]["p50_ms"] / claims[0]["p50_ms"],
        "ingest": ingest, "odata": odata, "claims": claims,
    }  # fmt: skip
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()

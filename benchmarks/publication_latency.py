"""Publication latency: a file complete at a local source (renamed into it) -> visible through the OData API.

Target (issue): p95 <= 2 s. The real `auxip serve` runs as its own process (API, subscription worker and ingestion
in one loop, as deployed) with the default SQLite catalog, a local source over an inbox and the harness clamd, with
the configuration defaults (poll_interval 30 s, settle_seconds 2 s, sweep_seconds 1 s: inotify makes a renamed file
eligible at once, polling is the fallback). A producer writes `--count` inputs of `feed()` one at a time at
`--rate` per second, each as `.<name>.part` then renamed (as producers do); for each, a poller asks
`Products?$filter=Name eq '<published name>'` (Basic auth) every `--poll-interval` s until it is there. Latency is
rename -> first answer that lists it, so it carries up to one poll interval of resolution.

Each latency is split with the catalog's own clocks: rename -> `ingest_item.discovered_at` (inotify + discovery),
-> `PublicationDate` (fetch, scan, prepare, store, publish), -> visible (commit to query answer and polling).
Baselines of the same run: the raw query latency of the pollers' requests, and each file's time through the shell
baseline of `ingest_throughput.py` (cp + md5sum + clamdscan --stream + zip + md5sum), one at a time: the floor of the
work alone, without discovery or a catalog.

Run: `.venv/bin/python benchmarks/publication_latency.py [--count 200] [--rate 5] [--poll-interval 0.05]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import yaml
from ingest_throughput import baseline
from sqlalchemy import select

from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.config import AuxipConfig
from auxip.ingest.models import IngestItem
from auxip.ingest.naming import parse_name
from auxip_testing.clamd import ClamdServer, run_clamd
from auxip_testing.process import ManagedProcess, free_port, running, scratch_dir
from auxip_testing.sample_feed import feed

USER, PASSWORD = "bench", "bench-password"
PROGRESS_SECONDS = 10.0


@dataclass
class Tracked:
    """One input on its way: when it was renamed into the inbox and when a poller first saw it."""

    source: Path
    name: str
    published_name: str
    renamed_wall: float = 0.0
    renamed: float = 0.0
    visible: float | None = None
    query_seconds: list[float] = field(default_factory=list)

    @property
    def latency(self) -> float:
        assert self.visible is not None
        return self.visible - self.renamed


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return statistics.median(ordered), cuts[94], ordered[-1]


def line(label: str, values: list[float], unit: float = 1.0, suffix: str = "s") -> str:
    p50, p95, top = percentiles([value / unit for value in values])
    return f"  {label:46s} p50 {p50:7.3f} {suffix}   p95 {p95:7.3f} {suffix}   max {top:7.3f} {suffix}"


def write_config(work: Path, inbox: Path, clamd_url: str, port: int) -> tuple[Path, AuxipConfig]:
    document = {
        "data_dir": str(work / "data"),
        "api": {"listen": f"127.0.0.1:{port}"},
        "log_format": "json",
        "sources": [{"name": "local", "url": inbox.as_uri()}],
        "scanner": {"url": clamd_url},
    }
    path = work / "auxip.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, AuxipConfig.model_validate(document)


def add_user(config: AuxipConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.catalog_url)
    engine = make_engine(config.catalog_url)
    LocalIdentityStore(engine).add_user(USER, PASSWORD, [Role.DOWNLOAD])
    engine.dispose()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a loopback URL built here
            return True
    except urllib.error.HTTPError:
        return True  # 401 without credentials: the server is up
    except OSError:
        return False


def deliver(item: Tracked, inbox: Path) -> None:
    """Write the input under a temporary name, then rename it into the inbox: from then on it is complete."""
    part = inbox / f".{item.name}.part"
    if item.source.is_dir():
        shutil.copytree(item.source, part)
    else:
        shutil.copyfile(item.source, part)
    item.renamed_wall = time.time()
    item.renamed = time.perf_counter()
    os.rename(part, inbox / item.name)


async def poll_until_visible(session: aiohttp.ClientSession, url: str, item: Tracked, interval: float) -> None:
    params = {"$filter": f"Name eq '{item.published_name}'"}
    while True:
        started = time.perf_counter()
        async with session.get(url, params=params) as response:
            body = await response.json()
        now = time.perf_counter()
        item.query_seconds.append(now - started)
        if response.status != 200:
            raise RuntimeError(f"query for {item.published_name}: HTTP {response.status} {body}")
        if body["value"]:
            item.visible = now
            return
        await asyncio.sleep(interval)


async def produce(items: list[Tracked], inbox: Path, api: str, rate: float, interval: float, timeout: float) -> None:
    credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:
        pollers = []
        started = time.perf_counter()
        last_report = started
        for index, item in enumerate(items):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            await asyncio.to_thread(deliver, item, inbox)
            pollers.append(asyncio.create_task(poll_until_visible(session, f"{api}/Products", item, interval)))
            if time.perf_counter() - last_report >= PROGRESS_SECONDS:
                last_report = time.perf_counter()
                seen = sum(1 for other in items if other.visible is not None)
                print(f"  {index + 1}/{len(items)} delivered, {seen} visible", flush=True)
        async with asyncio.timeout(timeout):
            await asyncio.gather(*pollers)


def catalog_times(config: AuxipConfig) -> dict[str, tuple[datetime, datetime]]:
    """Input name -> (discovered_at, PublicationDate) from the catalog."""
    engine = make_engine(config.catalog_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(IngestItem.name, IngestItem.discovered_at, Product.publication_date).join(
                Product, Product.id == IngestItem.product_id
            )
        ).all()
    engine.dispose()
    return {name: (discovered, published) for name, discovered, published in rows}


def baseline_floor(items: list[Tracked], work: Path, clamd: ClamdServer) -> list[float]:
    """Each input through the shell baseline, one at a time: the latency of the work alone."""
    tools = baseline(work, clamd)
    seconds = []
    for item in items:
        started = time.perf_counter()
        tools.one(item.source)
        seconds.append(time.perf_counter() - started)
    tools.remove_outputs()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="files renamed into the inbox per second")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds between a poller's queries")
    parser.add_argument("--min-size", type=int, default=10_000)
    parser.add_argument("--max-size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("clamdscan") is None or shutil.which("zip") is None:
        raise SystemExit("the baseline needs clamdscan and zip (apt-get install clamdscan zip)")

    with scratch_dir("auxip-bench-latency-") as work, run_clamd() as clamd:
        pool, inbox = work / "pool", work / "inbox"
        inbox.mkdir()
        paths = feed(pool, args.count, seed=args.seed, sizes=(args.min_size, args.max_size))
        items = [Tracked(path, path.name, parse_name(path.name).published_name) for path in paths]
        port = free_port()
        config_path, config = write_config(work, inbox, f"tcp://{clamd.host}:{clamd.port}", port)
        add_user(config)
        server = ManagedProcess(
            name=f"auxip-serve:{port}",
            argv=[str(Path(sys.executable).with_name("auxip")), "serve", "--config", str(config_path)],
            log_path=work / "serve.log",
        )
        api = f"http://127.0.0.1:{port}/odata/v1"
        print(f"{args.count} inputs ({args.min_size}-{args.max_size} bytes) at {args.rate}/s into {inbox}")
        print("auxip serve: SQLite catalog, poll_interval 30 s, settle_seconds 2 s, sweep_seconds 1 s (defaults)")
        with running(server, lambda: answers(f"{api}/"), timeout=60):
            timeout = args.count / args.rate + 120
            asyncio.run(produce(items, inbox, api, args.rate, args.poll_interval, timeout))
        times = catalog_times(config)
        print("baseline floor: each file through cp + md5sum + clamdscan --stream + zip + md5sum ...", flush=True)
        floor = baseline_floor(items, work, clamd)

    latencies = [item.latency for item in items]
    discovery = [times[item.name][0].timestamp() - item.renamed_wall for item in items]
    pipeline = [(times[item.name][1] - times[item.name][0]).total_seconds() for item in items]
    visible = [item.renamed_wall + item.latency - times[item.name][1].timestamp() for item in items]
    queries = [seconds for item in items for seconds in item.query_seconds]
    p95 = percentiles(latencies)[1]
    print(f"\npublication latency, {len(items)} files (rename -> visible through the OData API):")
    print(line("rename -> visible", latencies))
    print(line("  rename -> discovered (inotify, discovery)", discovery))
    print(line("  discovered -> PublicationDate (the stages)", pipeline))
    print(line("  PublicationDate -> visible (query, polling)", visible))
    print("baselines:")
    print(line(f"raw query latency ({len(queries)} queries)", queries, 1e-3, "ms"))
    print(line("shell pipeline, one file at a time", floor))
    print(f"  ratio p95 latency / p95 shell pipeline: {p95 / percentiles(floor)[1]:.1f}")
    print(f"target p95 <= 2 s: {'PASS' if p95 <= 2.0 else 'FAIL'} (p95 {p95:.3f} s)")
    slowest = max(items, key=lambda item: item.latency)
    print(f"slowest: {slowest.name} ({slowest.latency:.3f} s)")


if __name__ == "__main__":
    main()

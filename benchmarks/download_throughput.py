"""Download throughput: the API's `Products(<Id>)/$value` (local backend) against a private nginx, same file.

Target: API MB/s >= 0.8 x nginx MB/s for a 1 GB product, and 32 parallel ranged downloads byte-exact, zero errors.

Both servers serve the same 1 GiB file (the nginx document root is also the storage root), so both read from the
same page cache; the file is real data (a 64 MiB random block repeated), not a sparse file, whose holes the kernel
would serve without touching memory. The client is `curl -o /dev/null` in a separate process for both servers, so
the client's cost is identical and the API's event loop runs only the server. Runs alternate API/nginx to spread
machine noise over both. Run: `.venv/bin/python benchmarks/download_throughput.py [--runs 3] [--size-mib 1024]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import mmap
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from auxip.api.db import ENGINE
from auxip.api.download import STORAGE, add_download_routes
from auxip.api.errors import odata_errors
from auxip.catalog import ProductRecord, publish_product
from auxip.catalog.migrate import make_engine, upgrade
from auxip.storage import LocalStorage
from auxip_testing.http import run_nginx
from auxip_testing.process import free_port, scratch_dir

MIB = 1 << 20
BLOCK = 64 * MIB
KEY = "bench/S1A_OPER_AUX_BENCH_1GB.EOF.zip"
PARALLEL = 32


def write_file(path: Path, size: int) -> str:
    """`size` bytes of a repeated random block, fsynced; returns the MD5 computed while writing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(BLOCK)
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            piece = block[: min(BLOCK, remaining)]
            file.write(piece)
            md5.update(piece)
            remaining -= len(piece)
        file.flush()
        os.fsync(file.fileno())
    return md5.hexdigest()


def publish(catalog_url: str, size: int, md5: str) -> str:
    upgrade(catalog_url)
    engine = make_engine(catalog_url)
    now = datetime.now(UTC)
    record = ProductRecord(
        name=KEY.rsplit("/", 1)[1],
        content_length=size,
        checksums={"MD5": md5},
        origin_date=now,
        content_date_start=now,
        storage_key=KEY,
        retention=timedelta(days=1),
    )
    product_id = str(publish_product(engine, record).id)
    engine.dispose()
    return product_id


async def curl(url: str) -> tuple[int, float]:
    """(bytes received, seconds) for one streaming download discarded by curl."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}", url, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"curl {url} failed with exit code {process.returncode}")
    return int(out), elapsed


async def parallel_ranges(url: str, path: Path, size: int) -> tuple[int, int]:
    """32 ranged GETs at once, each compared with its slice of the file; returns (errors, bytes checked)."""
    step = -(-size // PARALLEL)
    ranges = [(start, min(start + step, size)) for start in range(0, size, step)]
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:

        async def fetch(session: aiohttp.ClientSession, start: int, end: int) -> int:
            headers = {"Range": f"bytes={start}-{end - 1}"}
            async with session.get(url, headers=headers) as response:
                body = await response.read()
            expected_range = f"bytes {start}-{end - 1}/{size}"
            if response.status != 206 or response.headers.get("Content-Range") != expected_range:
                raise AssertionError(f"range {start}-{end - 1}: {response.status} {response.headers}")
            if body != view[start:end]:
                raise AssertionError(f"range {start}-{end - 1}: bytes differ from the file")
            return len(body)

        connector = aiohttp.TCPConnector(limit=PARALLEL)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            results = await asyncio.gather(*(fetch(session, s, e) for s, e in ranges), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        print(f"  error: {error!r}")
    return len(errors), sum(r for r in results if isinstance(r, int))


def report(label: str, runs: list[tuple[int, float]], size: int) -> float:
    rates = [received / elapsed / 1e6 for received, elapsed in runs]
    for received, _ in runs:
        if received != size:
            raise AssertionError(f"{label}: received {received} bytes, expected {size}")
    print(f"  {label:6s} runs MB/s: {', '.join(f'{r:8.1f}' for r in rates)}   p50 {statistics.median(rates):8.1f}")
    return statistics.median(rates)


async def run(runs: int, size: int) -> None:
    with scratch_dir("auxip-bench-download-") as work, run_nginx(work / "nginx") as servers:
        root = servers.http.root
        path = root / KEY
        started = time.perf_counter()
        md5 = write_file(path, size)
        print(f"file: {size} bytes ({size / 1e9:.2f} GB), MD5 {md5}, written in {time.perf_counter() - started:.1f} s")
        product_id = publish(f"sqlite:///{work / 'catalog.db'}", size, md5)

        app = web.Application(middlewares=[odata_errors])
        app[ENGINE] = make_engine(f"sqlite:///{work / 'catalog.db'}")
        app[STORAGE] = LocalStorage(root)
        add_download_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        api_url = f"http://127.0.0.1:{port}/odata/v1/Products({product_id})/$value"
        nginx_url = f"{servers.http.http_url}{KEY}"
        try:
            # One warm-up each: page cache filled, connections and code paths hot.
            await curl(api_url)
            await curl(nginx_url)
            api_runs, nginx_runs = [], []
            for _ in range(runs):
                api_runs.append(await curl(api_url))
                nginx_runs.append(await curl(nginx_url))
            print(f"sequential full downloads (curl -o /dev/null, {runs} runs each, alternating):")
            api = report("API", api_runs, size)
            nginx = report("nginx", nginx_runs, size)
            ratio = api / nginx
            verdict = "PASS" if ratio >= 0.8 else "FAIL"
            print(f"  ratio API/nginx (p50): {ratio:.2f}   target >= 0.80: {verdict}")

            started = time.perf_counter()
            errors, checked = await parallel_ranges(api_url, path, size)
            elapsed = time.perf_counter() - started
            print(
                f"{PARALLEL} parallel ranged downloads via the API: {checked} bytes compared with the file in "
                f"{elapsed:.1f} s ({checked / elapsed / 1e6:.1f} MB/s aggregate incl. comparison): "
                + ("zero errors, byte-exact" if errors == 0 and checked == size else f"{errors} ERRORS")
            )
        finally:
            await runner.cleanup()
            app[ENGINE].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.size_mib * MIB))


if __name__ == "__main__":
    main()

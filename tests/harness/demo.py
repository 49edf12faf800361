"""`make demo`: the whole AUXIP on its embedded defaults, fed by a realistic Sentinel-1 auxiliary sample feed.

One process group: the OData API, the ingestion pipeline (local source → integrity → clamd → validation → S1PDGS
transformation → publication → events), subscriptions, eviction — over a SQLite catalog, local object storage, the
embedded event bus and local users. clamd runs on loopback with the project's test signature database (EICAR only:
no signature download is possible here). A feed writes inputs into the source directory over time — EOF orbit files,
SAFE folders, tgz archives — plus one EICAR file and one misnamed file, so quarantine is visible.

Everything lives under `build/demo/` (or `--data-dir`): a second run resumes on the same data and goes on with the feed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import yaml
from aiohttp import web
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import Engine, select

from auxip.api.app import Services, build_process
from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.config import AuxipConfig, load_config
from auxip.ingest.models import TERMINAL
from auxip.ingest.quarantine import list_entries
from auxip.ingest.service import stage_counts
from auxip.logs import configure as configure_logging
from auxip_testing.clamd import CLAMD, eicar, run_clamd
from auxip_testing.pulumi_mocks import REPO_ROOT
from auxip_testing.sample_feed import feed

DEMO_USER = "demo"
#: Inputs written at once when the feed starts (products appear within seconds), then one every `--interval` s.
FIRST_BATCH = 10
FEED_TOTAL = 120
FEED_START = datetime(2026, 11, 1, tzinfo=UTC)
EICAR_NAME = "S1A_OPER_AUX_RESORB_OPOD_20261101T020000_V20261031T230000_20261101T020000.EOF"
MISNAMED = "S1A_orbit_update_latest.EOF"

console = Console()


# --- setup ---------------------------------------------------------------------------------------------------------


def require_clamd() -> None:
    """clamd is part of the AUXIP: install it as root, or stop with what to do — never run without antivirus."""
    if Path(CLAMD).exists():
        return
    if os.geteuid() != 0:
        console.print(
            "[bold red]clamd is not installed.[/] The demo never runs without antivirus. Install it with\n"
            "  sudo apt-get install -y clamav-daemon\nthen run `make demo` again."
        )
        raise SystemExit(2)
    console.print("clamd is not installed: installing Debian's clamav-daemon (root) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "clamav", "clamav-daemon"]):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            console.print(f"[bold red]`{' '.join(command)}` failed[/]: install clamav-daemon by hand, then retry.")
            raise SystemExit(2)


def write_config(data_dir: Path, listen: str, clamd_url: str) -> AuxipConfig:
    """The demo's configuration, rewritten at every start (clamd's port changes); the data stays."""
    document = {
        "data_dir": str(data_dir),
        "api": {"listen": listen},
        "log_format": "json",
        "sources": [
            {"name": "demo-feed", "url": (data_dir / "inbox").as_uri(), "poll_interval": 2.0, "settle_seconds": 1.0}
        ],
        "scanner": {"url": clamd_url},
        "retention": {"default_days": 365, "per_type": {"AUX_RESORB": 30, "AUX_PREORB": 30}},
        "ingest": {"sweep_seconds": 0.5, "lease_seconds": 30},
    }
    path = data_dir / "auxip.yaml"
    path.write_text(
        "# Written by `make demo` at every start; edit a copy for your own runs.\n" + yaml.safe_dump(document)
    )
    return load_config(path)


def demo_password(data_dir: Path, store: LocalIdentityStore) -> str:
    """One generated password per data directory, kept 0600 beside the catalog (never in the repository)."""
    path = data_dir / "demo-password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    store.add_user(DEMO_USER, password, [Role.DOWNLOAD, Role.REPORTING])
    return password


# --- the sample feed -----------------------------------------------------------------------------------------------


def _feed_one(inbox: Path, index: int) -> None:
    """Input number `index` of the feed, written to a scratch folder and renamed in (as producers do)."""
    if index == 2:
        _drop(inbox, EICAR_NAME, eicar())
        return
    if index == 5:
        _drop(inbox, MISNAMED, b"<?xml version='1.0'?><Earth_Explorer_File/>\n")
        return
    with tempfile.TemporaryDirectory(dir=inbox.parent) as scratch:
        (written,) = feed(Path(scratch), 1, seed=1000 + index, start=FEED_START + timedelta(minutes=41 * index),
                          sizes=(20_000, 2_000_000))  # fmt: skip
        if not (inbox / written.name).exists():
            os.replace(written, inbox / written.name)


def _drop(inbox: Path, name: str, data: bytes) -> None:
    temporary = inbox / f".{name}.part"
    temporary.write_bytes(data)
    os.replace(temporary, inbox / name)


def feed_position(inbox: Path) -> int:
    return len([path for path in inbox.iterdir() if not path.name.startswith(".")])


async def run_feed(inbox: Path, interval: float, total: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    index = feed_position(inbox)
    while index < total:
        await asyncio.to_thread(_feed_one, inbox, index)
        index += 1
        if index > FIRST_BATCH:
            await asyncio.sleep(interval)


# --- what the operator sees ----------------------------------------------------------------------------------------


def example_commands(config: AuxipConfig, password: str, product_id: str) -> list[str]:
    """The curl commands the banner prints; `--check` runs exactly these."""
    root = f"http://{config.api.listen}/odata/v1"
    curl = f"curl -sf -u {DEMO_USER}:{password}"
    listing = f"{curl} -G {root}/Products"
    orbits = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        "and att/OData.CSC.StringAttribute/Value eq 'AUX_RESORB')"
    )
    return [
        f"{listing} --data-urlencode '$top=5' --data-urlencode '$orderby=PublicationDate desc'",
        f"{listing} --data-urlencode \"\\$filter={orbits}\" --data-urlencode '$top=3' "
        "--data-urlencode '$expand=Attributes'",
        f"{listing} --data-urlencode \"\\$filter=startswith(Name,'S1')\" --data-urlencode '$count=true' "
        "--data-urlencode '$top=1'",
        f"{curl} -OJ '{root}/Products({product_id})/$value'",
    ]


def banner(config: AuxipConfig, password: str, product_id: str) -> str:
    api = f"http://{config.api.listen}"
    commands = "\n".join(f"  {command}" for command in example_commands(config, password, product_id))
    return f"""
[bold]AUXIP demo[/] — the whole AUXIP on its embedded defaults, fed with Sentinel-1 auxiliary files
  OData root   {api}/odata/v1/
  user         {DEMO_USER} / {password}   (roles Download, Reporting)
  token        curl -s -d grant_type=password -d username={DEMO_USER} -d password={password} \\
                    -d client_id=auxip-api {api}/auth/token
  metrics      {api}/metrics      health {api}/health/ready
  data         {config.data_dir}   (catalog.db, products/, quarantine/, auxip.log)
  feed         {config.data_dir / "inbox"}  (drop your own S1 auxiliary files here too)
  operator     .venv/bin/auxip status -c {config.data_dir / "auxip.yaml"}
               .venv/bin/auxip quarantine list -c {config.data_dir / "auxip.yaml"}

Try (copy and paste):
{commands}

Ctrl-C stops everything; `make demo` again resumes on the same data.
"""


def progress_table(engine: Engine, inbox: Path) -> Table:
    counts = stage_counts(engine)
    table = Table(title="AUXIP pipeline", expand=False)
    for column in ("fed", "found", "scan", "prepare", "published", "quarantine", "dup"):
        table.add_column(column, justify="right")
    in_flight = sum(count for state, count in counts.items() if state not in TERMINAL)
    table.add_row(
        str(feed_position(inbox)),
        str(sum(counts.values())),
        str(counts.get("fetched", 0)),
        str(counts.get("scanned", 0) + counts.get("prepared", 0) + counts.get("stored", 0)),
        str(counts.get("announced", 0) + counts.get("published", 0)),
        str(counts.get("quarantined", 0)),
        str(counts.get("duplicate", 0)),
    )
    entries = list_entries(engine)
    table.caption = f"in flight {in_flight}" + "".join(
        f"\nquarantined: {entry.name} — {entry.reason} ({entry.detail[:60]})" for entry in entries[-4:]
    )
    return table


def first_product_id(engine: Engine) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(Product.id).where(Product.evicted_at.is_(None)).order_by(Product.publication_date).limit(1)
        ).scalar_one_or_none()
    return None if value is None else str(value)


# --- running -------------------------------------------------------------------------------------------------------


def first_batch_settled(engine: Engine) -> bool:
    counts = stage_counts(engine)
    return sum(counts.values()) >= FIRST_BATCH and all(state in TERMINAL for state in counts)


async def _wait_for(check: Callable[[], object], what: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the demo pipeline did not reach '{what}' within {timeout} s")
        await asyncio.sleep(0.2)


def check(config: AuxipConfig, password: str, product_id: str) -> None:
    """What `--check` verifies: every printed command answers as printed; the download is the catalog's bytes."""
    workdir = Path(tempfile.mkdtemp(prefix="auxip-demo-check-"))
    for command in example_commands(config, password, product_id):
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False, cwd=workdir
        )
        if result.returncode != 0:
            raise RuntimeError(f"demo command failed ({result.returncode}): {command}\n{result.stdout}{result.stderr}")
        if "/$value" not in command and not json.loads(result.stdout)["value"]:
            raise RuntimeError(f"demo command answered no product: {command}")
    product = requests.get(
        f"http://{config.api.listen}/odata/v1/Products({product_id})", auth=(DEMO_USER, password), timeout=10
    ).json()
    data = (workdir / product["Name"]).read_bytes()  # curl -OJ names it as Content-Disposition says
    shutil.rmtree(workdir)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    expected = next(c["Value"] for c in product["Checksum"] if c["Algorithm"] == "MD5")
    if len(data) != product["ContentLength"] or md5 != expected:
        raise RuntimeError(f"downloaded {len(data)} bytes with MD5 {md5}; the catalog says {product}")
    reasons = sorted((entry.name, entry.reason) for entry in list_entries(make_engine(config.catalog_url)))
    print(f"demo check: {len(example_commands(config, password, product_id))} commands answered as printed, "
          f"{product['Name']} downloaded and verified; quarantine: {reasons}")  # fmt: skip


async def run(config: AuxipConfig, password: str, interval: float, total: int, check_only: bool) -> None:
    engine = make_engine(config.catalog_url)
    storage = config.open_storage()
    app = build_process(config, Services(engine=engine, storage=storage, store=LocalIdentityStore(engine)))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.api.host, config.api.port).start()
    inbox = config.data_dir / "inbox"
    feeding = asyncio.create_task(run_feed(inbox, interval, FIRST_BATCH if check_only else total))
    try:
        await _wait_for(lambda: first_product_id(engine), "a first product published", 120)
        product_id = first_product_id(engine)
        assert product_id is not None
        console.print(banner(config, password, product_id), soft_wrap=True, highlight=False)
        if check_only:
            await _wait_for(lambda: first_batch_settled(engine), "the first batch settled", 120)
            await asyncio.to_thread(check, config, password, product_id)
            return
        with Live(progress_table(engine, inbox), console=console, refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(1.0)
                live.update(progress_table(engine, inbox))
    finally:
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        await runner.cleanup()
        engine.dispose()


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """The service's JSON logs go to a file: the terminal shows the progress table."""
    with path.open("a") as handle:
        configure_logging("json", handle)
        yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "build" / "demo")
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between inputs after the first batch")
    parser.add_argument("--total", type=int, default=FEED_TOTAL, help="inputs the feed writes in all")
    parser.add_argument("--check", action="store_true", help="start, verify the printed commands, stop")
    args = parser.parse_args()
    require_clamd()
    data_dir = args.data_dir.resolve()
    (data_dir / "inbox").mkdir(parents=True, exist_ok=True)
    with run_clamd() as clamd, _log_to(data_dir / "auxip.log"):
        config = write_config(data_dir, args.listen, f"tcp://{clamd.host}:{clamd.port}")
        upgrade(config.catalog_url)
        engine = make_engine(config.catalog_url)
        password = demo_password(data_dir, LocalIdentityStore(engine))
        engine.dispose()
        resumed = feed_position(data_dir / "inbox")
        console.print(f"clamd {clamd.version} on {clamd.host}:{clamd.port} (test signature database: EICAR)")
        console.print(f"resuming on {data_dir} ({resumed} inputs fed so far)" if resumed else f"new demo in {data_dir}")
        try:
            asyncio.run(run(config, password, args.interval, args.total, args.check))
        except KeyboardInterrupt:
            console.print(f"\nstopped cleanly; the data stays in {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo` until the demo issue lands: the OData API on its embedded defaults with a sample catalog.

What is here: the API (Products, $value, Subscriptions, local users and token endpoint) over a SQLite catalog and
local storage, seeded with realistic Sentinel-1 auxiliary products. What is not here yet: the ingestion pipeline
(sources, antivirus, transformation), routing, and the live sample feed; the demo says so when it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import requests
from aiohttp import web

from auxip.api.app import Services, build_app, run_subscription_worker
from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.migrate import make_engine, upgrade
from auxip.config import AuxipConfig, load_config
from auxip_testing.api_server import seed_catalog
from auxip_testing.pulumi_mocks import REPO_ROOT

DEMO_USER = "demo"
SAMPLE_PRODUCTS = 200


def _config(data_dir: Path, listen: str) -> AuxipConfig:
    path = data_dir / "auxip.yaml"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"data_dir: {data_dir}\napi:\n  listen: {listen}\nlog_format: json\n")
    return load_config(path)


def _demo_password(data_dir: Path, store: LocalIdentityStore) -> str:
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


def example_commands(config: AuxipConfig, password: str) -> list[str]:
    """The curl commands the banner prints; `--check` runs exactly these."""
    root = f"http://{config.api.listen}/odata/v1"
    curl = f"curl -sf -u {DEMO_USER}:{password} -G {root}/Products"
    product_type = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        "and att/OData.CSC.StringAttribute/Value eq 'AUX_RESORB')"
    )
    return [
        f"{curl} --data-urlencode '$top=5' --data-urlencode '$orderby=PublicationDate desc'",
        f"{curl} --data-urlencode \"\\$filter={product_type}\" --data-urlencode '$top=3'",
        f"{curl} --data-urlencode \"\\$filter=startswith(Name,'S1A_')\" --data-urlencode '$count=true' "
        "--data-urlencode '$top=1'",
    ]


def _banner(config: AuxipConfig, password: str, count: int) -> str:
    api = f"http://{config.api.listen}"
    examples = "\n".join(f"  {command}" for command in example_commands(config, password))
    return f"""
AUXIP demo — OData API on embedded defaults
  OData root   {api}/odata/v1/
  catalog      {config.catalog_url}  ({count} products)
  products     {config.storage_url}
  metrics      {api}/metrics
  user         {DEMO_USER} / {password}   (roles Download, Reporting)
  token        curl -s -d grant_type=password -d username={DEMO_USER} -d password={password} -d client_id=auxip-api \\
                    {api}/auth/token

Try:
{examples}
  curl -sf -u {DEMO_USER}:{password} -OJ '{api}/odata/v1/Products(<Id from a listing>)/$value'

Not here yet (their issues are open): ingestion from sources with antivirus and transformation, routing,
hosted MP/SRA exchanges, and the live sample feed. Ctrl-C stops; running `make demo` again resumes on the same data.
"""


def _smoke(config: AuxipConfig, password: str) -> None:
    """What `--check` runs: every printed command answers as printed, and a listed product downloads whole."""
    for command in example_commands(config, password):
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0 or not json.loads(result.stdout)["value"]:
            raise RuntimeError(f"demo command failed ({result.returncode}): {command}\n{result.stdout}{result.stderr}")
    session = requests.Session()
    session.auth = (DEMO_USER, password)
    root = f"http://{config.api.listen}/odata/v1"
    product = session.get(f"{root}/Products", params={"$top": "1"}, timeout=10).json()["value"][0]
    download = session.get(f"{root}/Products({product['Id']})/$value", timeout=30)
    download.raise_for_status()
    if len(download.content) != product["ContentLength"]:
        raise RuntimeError(f"downloaded {len(download.content)} bytes, catalog says {product['ContentLength']}")
    print(f"demo check: {len(example_commands(config, password))} commands answered, {product['Name']} downloaded")


async def _run(config: AuxipConfig, password: str, check: bool) -> None:
    engine = make_engine(config.catalog_url)
    store = LocalIdentityStore(engine)
    storage = config.open_storage()
    app = build_app(config, Services(engine=engine, storage=storage, store=store))
    run_subscription_worker(app, interval=2.0)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.api.host, config.api.port).start()
    try:
        if check:
            await asyncio.to_thread(_smoke, config, password)
            return
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "build" / "demo")
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--check", action="store_true", help="start, verify the printed queries, stop")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    config = _config(data_dir, args.listen)
    (data_dir / "products").mkdir(parents=True, exist_ok=True)
    upgrade(config.catalog_url)
    engine = make_engine(config.catalog_url)
    store = LocalIdentityStore(engine)
    storage = config.open_storage()
    count = engine.connect().exec_driver_sql("SELECT count(*) FROM product").scalar_one()
    if count == 0:
        print(f"seeding {SAMPLE_PRODUCTS} sample Sentinel-1 auxiliary products ...", flush=True)
        count = len(asyncio.run(seed_catalog(engine, storage, SAMPLE_PRODUCTS)))
    password = _demo_password(data_dir, store)
    engine.dispose()
    print(_banner(config, password, count), flush=True)
    try:
        asyncio.run(_run(config, password, args.check))
    except KeyboardInterrupt:
        print("\nstopped; the data stays in", data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

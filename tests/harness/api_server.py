"""A real AUXIP API server on loopback, with a catalog seeded from realistic sample products whose bytes exist.

`run_api(config)` starts the app in a thread of its own (its own event loop), so synchronous clients (requests,
newman, eodag, benchmarks) can call it; `seed_catalog` publishes sample products with generated content.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import threading
from collections.abc import AsyncIterator, Collection, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import Engine

from auxip.api.app import Services, build_app, run_subscription_worker
from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.publish import PublishedProduct, publish_product
from auxip.catalog.records import ProductRecord
from auxip.config import AuxipConfig
from auxip.storage import Storage
from auxip_testing.process import free_port
from auxip_testing.sample_products import sample_records

T = TypeVar("T")


def sample_content(record: ProductRecord, size: int) -> bytes:
    """Deterministic bytes for a product: its name repeated, so every file differs and sizes are exact."""
    seed = record.name.encode() + b"\n"
    return (seed * (size // len(seed) + 1))[:size]


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def with_content(record: ProductRecord, data: bytes) -> ProductRecord:
    """The record with the size and MD5 of `data`, the bytes that will be stored for it."""
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return dataclasses.replace(record, content_length=len(data), checksums={"MD5": md5})


async def publish_content(engine: Engine, storage: Storage, record: ProductRecord, data: bytes) -> PublishedProduct:
    """Store `data` under the record's key, then publish the record with the size and MD5 of those bytes."""
    await storage.put_stream(record.storage_key, _one_chunk(data))
    return await asyncio.to_thread(publish_product, engine, with_content(record, data))


async def seed_catalog(
    engine: Engine, storage: Storage, count: int, seed: int = 1, product_types: Collection[str] | None = None
) -> list[ProductRecord]:
    """Publish `count` sample products (2-16 KiB each) with their bytes in `storage`; returns what was published."""
    published = []
    for index, record in enumerate(sample_records(count, seed=seed, product_types=product_types)):
        data = sample_content(record, 2048 + (index * 997) % 14336)
        await publish_content(engine, storage, record, data)
        published.append(with_content(record, data))
    return published


@dataclass(frozen=True)
class ApiServer:
    base_url: str
    config: AuxipConfig
    engine: Engine
    storage: Storage
    store: LocalIdentityStore
    loop: asyncio.AbstractEventLoop

    @property
    def service_root(self) -> str:
        return f"{self.base_url}/odata/v1"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/auth/token"

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (e.g. to publish more products while clients poll)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def add_user(self, username: str, password: str, *roles: Role) -> None:
        self.store.add_user(username, password, roles)


def default_config(data_dir: Path, **overrides: object) -> AuxipConfig:
    port = free_port()
    document = {"data_dir": str(data_dir), "api": {"listen": f"127.0.0.1:{port}"}, **overrides}
    return AuxipConfig.model_validate(document)


@contextlib.contextmanager
def run_api(config: AuxipConfig, notify_interval: float | None = 0.5) -> Iterator[ApiServer]:
    """Migrate the catalog, start the API on `config.api.listen` in a background thread, stop it on exit.

    With `notify_interval`, the subscription worker runs in the same loop (as `auxip serve` runs it).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.catalog_url)
    engine = make_engine(config.catalog_url)
    storage = config.open_storage()
    store = LocalIdentityStore(engine)
    app = build_app(config, Services(engine=engine, storage=storage, store=store))
    if notify_interval is not None:
        run_subscription_worker(app, notify_interval)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, config.api.host, config.api.port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="auxip-api", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the API server did not start within 30 s")
    try:
        yield ApiServer(f"http://{config.api.listen}", config, engine, storage, store, loop)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        engine.dispose()

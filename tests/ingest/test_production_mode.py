"""The pipeline in production mode: PostgreSQL catalog, S3 storage (S3Proxy), Kafka bus, real clamd.

One in-process `IngestService` first, then two `auxip serve` processes sharing the database, the bucket, the broker
and the source directory — each with its own data directory, as two hosts would have (their own staging) — and one
of them SIGKILLed mid-run. Assertions read the catalog, every object of the bucket (downloaded and hashed) and the
`auxip.product.published` topic from where it stood when the test began.

The last three tests guard against defects the production setup had: nodes with their own staging fetching inputs
again while the other node lives; `auxip serve` ignoring `storage.s3`; two nodes migrating an empty catalog at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.config import AuxipConfig
from auxip.ingest.bus import PRODUCT_PUBLISHED
from auxip.ingest.models import TERMINAL, IngestItem
from auxip.ingest.naming import parse_name
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import PublishedFile, published, running_pipeline, settled, states
from auxip_testing.kafka_events import KafkaRecord, end_offsets, read_topic
from auxip_testing.postgres import PostgresServer
from auxip_testing.process import free_port, port_open
from auxip_testing.s3 import S3Server, bucket_objects
from auxip_testing.sample_feed import feed
from auxip_testing.serve_processes import ClaimWatcher, ServeProcess, serve_environment, start_serve, wait_until

pytestmark = pytest.mark.integration

TOPIC = f"auxip.{PRODUCT_PUBLISHED}"
PREFIX = "products"
FAST_INGEST = {
    "sweep_seconds": 0.1,
    "lease_seconds": 5,
    "retry_base_seconds": 0.1,
    "retry_max_seconds": 1.0,
    "min_free_bytes": 0,
}


@dataclass
class Production:
    """The shared backends of one test: a fresh database, a fresh bucket, the Kafka topic's position at the start."""

    catalog_url: str
    s3: S3Server
    bucket: str
    kafka: str
    scanner: str
    topic_start: dict[int, int]
    inbox: Path

    def document(self, data_dir: Path, **ingest: Any) -> dict[str, Any]:
        """A service configuration as an operator writes it (credentials come from AUXIP_S3_* variables)."""
        return {
            "data_dir": str(data_dir),
            "api": {"listen": f"127.0.0.1:{free_port()}"},
            "catalog": {"url": self.catalog_url},
            "storage": {
                "url": f"s3://{self.bucket}/{PREFIX}",
                "s3": {"endpoint_url": self.s3.endpoint_url, "region": self.s3.region},
            },
            "bus": {"url": f"kafka://{self.kafka}"},
            "sources": [{"name": "local", "url": self.inbox.as_uri(), "poll_interval": 0.2, "settle_seconds": 0}],
            "scanner": {"url": self.scanner},
            "ingest": {**FAST_INGEST, **ingest},
        }

    def credentials(self) -> dict[str, str]:
        return {"AUXIP_S3_ACCESS_KEY": self.s3.access_key, "AUXIP_S3_SECRET_KEY": self.s3.secret_key}

    def objects(self) -> dict[str, bytes]:
        """Every object of the bucket (key relative to the storage prefix) with its bytes."""
        client = self.s3.client()
        try:
            return bucket_objects(client, self.bucket, f"{PREFIX}/")
        finally:
            client.close()

    def events(self) -> list[KafkaRecord]:
        return read_topic(self.kafka, TOPIC, self.topic_start)


@pytest.fixture
def production(
    tmp_path: Path, postgres: PostgresServer, s3_server: S3Server, kafka: str, clamd: ClamdServer
) -> Iterator[Production]:
    database = postgres.create_database("ingest_prod")
    bucket = S3Server.fresh_bucket_name("auxip-prod")
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    client.close()
    try:
        yield Production(
            catalog_url=database.sqlalchemy_url,
            s3=s3_server,
            bucket=bucket,
            kafka=kafka,
            scanner=f"tcp://{clamd.host}:{clamd.port}",
            topic_start=end_offsets(kafka, TOPIC),
            inbox=tmp_path / "inbox",
        )
    finally:
        postgres.drop_database(database.dbname)


def _expected_names(inputs: list[Path]) -> set[str]:
    return {parse_name(path.name).published_name for path in inputs}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _product_ids(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {name: str(product_id) for name, product_id in conn.execute(select(Product.name, Product.id))}


def _names_published_twice(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(Product.name, func.count()).group_by(Product.name).having(func.count() > 1))
        return {name: int(count) for name, count in rows}


def _assert_catalog_and_storage_exactly_once(
    env: Production, engine: Engine, expected: set[str]
) -> dict[str, PublishedFile]:
    products = published(engine)
    assert _names_published_twice(engine) == {}
    assert set(products) == expected
    final = states(engine)
    assert len(final) == len(expected)
    assert set(final.values()) == {"announced"}, Counter(final.values())
    # The bucket holds exactly the catalog's objects — no product under a second key, nothing half-written —
    # each with the catalog's size and MD5.
    objects = env.objects()
    assert sorted(objects) == sorted(product.storage_key for product in products.values())
    for product in products.values():
        data = objects[product.storage_key]
        assert (product.name, len(data), _md5(data)) == (product.name, product.size, product.md5)
    return products


def _assert_events_cover(
    events: list[KafkaRecord], products: Mapping[str, PublishedFile], ids: Mapping[str, str]
) -> Counter[str]:
    """At least one event per product, each matching the catalog; returns how often each key was announced."""
    for event in events:
        product = products[event.key]
        assert event.payload["ProductName"] == event.key
        assert event.payload["MD5"] == product.md5
        assert event.payload["ContentLength"] == product.size
        assert event.payload["ProductId"] == ids[event.key]
    counts = Counter(event.key for event in events)
    assert set(counts) == set(products)
    return counts


# --- 1. one in-process service --------------------------------------------------------------------------------------


async def test_one_service_publishes_to_s3_and_announces_once_on_kafka(
    tmp_path: Path, production: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = feed(production.inbox, 30, seed=31, sizes=(10_000, 150_000))
    config = AuxipConfig.model_validate(production.document(tmp_path / "data"))
    upgrade(config.catalog_url)
    for name, value in production.credentials().items():
        monkeypatch.setenv(name, value)
    async with running_pipeline(config) as engine:
        await settled(engine, len(inputs), timeout=60)
        products = _assert_catalog_and_storage_exactly_once(production, engine, _expected_names(inputs))
        ids = _product_ids(engine)
    events = production.events()
    counts = _assert_events_cover(events, products, ids)
    # One process, no crash: exactly one event per product, keyed by the product name.
    assert {key: count for key, count in counts.items() if count > 1} == {}
    assert len(events) == len(products)


# --- 2. and 3. two `auxip serve` processes --------------------------------------------------------------------------


def _environment(env: Production) -> dict[str, str]:
    return serve_environment() | env.credentials()


def _start(env: Production, tmp_path: Path, name: str, **ingest: Any) -> ServeProcess:
    """A node as a host runs it: its own data directory (and so its own staging)."""
    return start_serve(tmp_path, name, env.document(tmp_path / name / "data", **ingest), _environment(env))


@contextlib.contextmanager
def _nodes(env: Production, tmp_path: Path, count: int, **ingest: Any) -> Iterator[list[ServeProcess]]:
    # The schema first: two processes migrating an empty database at once is its own test (the race is real).
    upgrade(env.catalog_url)
    nodes = [_start(env, tmp_path, f"node-{index}", **ingest) for index in range(count)]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _all_announced(engine: Engine, expected: int) -> Callable[[], bool]:
    def done() -> bool:
        current = states(engine)
        return len(current) == expected and set(current.values()) == {"announced"}

    return done


def _claims_of(engine: Engine, pid: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(IngestItem.id).where(IngestItem.claimed_by.like(f"%:{pid}:%"))).scalars())


def _refetches(node: ServeProcess) -> int:
    return sum(1 for line in node.log.read_text(errors="replace").splitlines() if line.strip() == "refetch")


def _report(title: str, nodes: list[ServeProcess], watcher: ClaimWatcher, counts: Counter[str]) -> None:
    duplicates = {key: count for key, count in counts.items() if count > 1}
    print(f"\n{title}")
    for node in nodes:
        print(
            f"  {node.name} pid {node.pid}: {watcher.by_pid()[node.pid]} item-stage claims observed, "
            f"{_refetches(node)} refetches (staged bytes on the other node)"
        )
    print(f"  product.published events: {sum(counts.values())} for {len(counts)} products, duplicates: {duplicates}")


@pytest.mark.slow
def test_two_serve_processes_share_the_work_and_publish_each_product_once(
    tmp_path: Path, production: Production
) -> None:
    inputs = feed(production.inbox, 60, seed=32, sizes=(10_000, 120_000))
    engine = make_engine(production.catalog_url)
    try:
        with _nodes(production, tmp_path, 2) as nodes:
            watcher = ClaimWatcher(engine)
            try:
                wait_until(_all_announced(engine, len(inputs)), 90, f"{len(inputs)} products announced", nodes, nodes)
                time.sleep(1.0)  # more sweeps of both nodes: a second publication would show now
            finally:
                watcher.stop()
            assert not [item for item, state in states(engine).items() if state not in TERMINAL]
        products = _assert_catalog_and_storage_exactly_once(production, engine, _expected_names(inputs))
        counts = _assert_events_cover(production.events(), products, _product_ids(engine))
    finally:
        engine.dispose()
    _report("two nodes, 60 inputs:", nodes, watcher, counts)
    by_pid = watcher.by_pid()
    assert all(by_pid[node.pid] > 0 for node in nodes), f"claims observed per pid: {dict(by_pid)}"


@pytest.mark.slow
def test_sigkill_one_of_two_processes_the_other_finishes_after_the_lease(
    tmp_path: Path, production: Production
) -> None:
    inputs = feed(production.inbox, 40, seed=33, sizes=(10_000, 120_000))
    engine = make_engine(production.catalog_url)
    try:
        with _nodes(production, tmp_path, 2, lease_seconds=5) as nodes:
            victim, survivor = nodes
            watcher = ClaimWatcher(engine)
            try:
                wait_until(lambda: len(published(engine)) >= len(inputs) // 4, 60, "a quarter published", nodes, nodes)
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait(timeout=10)
                held = _claims_of(engine, victim.pid)
                killed_at = time.monotonic()
                wait_until(_all_announced(engine, len(inputs)), 60, "the survivor finished", nodes, [survivor])
                finished_after = time.monotonic() - killed_at
            finally:
                watcher.stop()
        products = _assert_catalog_and_storage_exactly_once(production, engine, _expected_names(inputs))
        counts = _assert_events_cover(production.events(), products, _product_ids(engine))
    finally:
        engine.dispose()
    _report("two nodes, 40 inputs, one SIGKILLed:", nodes, watcher, counts)
    print(f"  items the victim held when killed: {held}; the survivor finished {finished_after:.1f} s after the kill")
    assert victim.process.returncode == -signal.SIGKILL
    assert held, "the victim held no claim when it was killed: the lease expiry was not exercised"


def _refetched_items(engine: Engine) -> list[str]:
    """Entries some stage sent back to fetch because their staged bytes were not on its node (`details.refetch`)."""
    with engine.connect() as conn:
        rows = conn.execute(select(IngestItem.name, IngestItem.details))
        return sorted(name for name, details in rows if "refetch" in json.loads(details or "{}"))


@pytest.mark.slow
def test_two_processes_with_their_own_staging_fetch_each_input_once(tmp_path: Path, production: Production) -> None:
    """Hosts stage on their own disk (the default `<data_dir>/staging`): a node must not take over the scan,
    prepare or store stage of an item whose fetched bytes sit on the other node while that node is alive."""
    inputs = feed(production.inbox, 20, seed=35, sizes=(10_000, 60_000))
    engine = make_engine(production.catalog_url)
    try:
        with _nodes(production, tmp_path, 2) as nodes:
            wait_until(_all_announced(engine, len(inputs)), 60, f"{len(inputs)} products announced", nodes, nodes)
        refetched = _refetched_items(engine)
    finally:
        engine.dispose()
    per_node = {node.name: _refetches(node) for node in nodes}
    assert refetched == [], f"{len(refetched)} of {len(inputs)} inputs fetched again; refetches per node: {per_node}"


# --- startup and configuration of `auxip serve` in production mode -----------------------------------------------


def test_serve_stores_at_the_configured_s3_endpoint(tmp_path: Path, production: Production) -> None:
    """`storage.s3.endpoint_url` and the AUXIP_S3_* credentials are what an operator configures: they must be used."""
    feed(production.inbox, 1, seed=34, sizes=(10_000, 10_000))
    upgrade(production.catalog_url)
    engine = make_engine(production.catalog_url)

    def rows() -> list[tuple[str, str | None]]:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(select(IngestItem.state, IngestItem.last_error))]

    def stored_or_store_failed() -> bool:
        return any(state in TERMINAL or (state == "prepared" and error) for state, error in rows())

    node = _start(production, tmp_path, "node")
    try:
        wait_until(stored_or_store_failed, 60, "the product stored, or its store failed", [node], [node])
        final = rows()
    finally:
        node.stop()
        engine.dispose()
    assert [state for state, _error in final] == ["announced"], f"state and last error: {final}"
    assert len(production.objects()) == 1


def _waiting_on_locks(engine: Engine) -> int:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_two_processes_started_together_on_an_empty_database_both_run(tmp_path: Path, production: Production) -> None:
    """Two hosts deployed at once both migrate the empty catalog at start: the later one must wait, not crash.

    To make the two migrations overlap every time (not only when the start-up jitter happens to line them up), an
    uncommitted `alembic_version` table of the test holds both processes at their first DDL statement until both
    are there; it is then rolled back, and they go on together.
    """
    production.inbox.mkdir()
    engine = make_engine(production.catalog_url)
    nodes: list[ServeProcess] = []
    try:
        with engine.connect() as gate:
            gate.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            nodes = [_start(production, tmp_path, f"node-{index}") for index in range(2)]
            wait_until(lambda: _waiting_on_locks(engine) >= 2, 30, "both migrations at the gate", nodes, nodes)
            gate.rollback()
        wait_until(lambda: all(port_open(node.api_port) for node in nodes), 60, "both APIs listening", nodes, nodes)
    finally:
        for node in nodes:
            node.stop()
        engine.dispose()

"""The production topology as separate processes: it scales out across processes with nothing lost or doubled.

2 `api`, 2 `ingest`, 1 `route`, 1 `notify` and 1 `evict` process (`auxip serve --role ...`, each with its own data
directory, as pods have), after one `auxip migrate` (the migration Job), on one PostgreSQL catalog, the S3 server,
the real Kafka, clamd and Keycloak tokens, fed with 1,000 inputs from an SFTP and an S3 source. Mid-run one ingest
process is SIGKILLed while it has items staged on its own disk, and one API process while a poller pages through
both; neither is restarted. Then:

- every product is published once, its object's bytes match its size and MD5;
- the poller (`PublicationDate gt <last>`, alternating between the API processes, moving to the live one when one
  is gone, as a Service does) saw every product once, in publication order, with no gap;
- the subscription was notified once per product; each route target holds each file once;
- the items staged on the killed process were finished by the other one; one process holds the eviction lease.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine, select

from auxip.catalog.leases import SingletonLease
from auxip.catalog.migrate import make_engine
from auxip.catalog.models import Product
from auxip.ingest.bus import PRODUCT_PUBLISHED
from auxip.ingest.models import IngestItem
from auxip.ingest.service import EVICTION_LEASE, STAGED_STATES
from auxip.ingest.state import staging_node
from auxip.routing.models import RouteDelivery
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import FAST, credentials_file, published, states
from auxip_testing.keycloak import KeycloakServer
from auxip_testing.notification_recorder import NotificationRecorder
from auxip_testing.postgres import PostgresServer
from auxip_testing.process import free_port
from auxip_testing.s3 import S3Server, bucket_objects, upload_tree
from auxip_testing.sample_feed import EPOCH, feed
from auxip_testing.serve_processes import AUXIP, ClaimWatcher, ServeProcess, serve_environment, start_serve, wait_until
from auxip_testing.sftp import SftpServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PER_SOURCE = 500
TOPOLOGY = {"api": 2, "ingest": 2, "route": 1, "notify": 1, "evict": 1}
SIZES = (2_000, 8_000)


def _create_topic(kafka: str, name: str) -> None:
    # Created before any process subscribes: a consumer of a missing topic only sees it at its next metadata refresh.
    admin = AdminClient({"bootstrap.servers": kafka})  # kept referenced: the futures die with their client
    for future in admin.create_topics([NewTopic(name, num_partitions=1)]).values():
        future.result(timeout=30)


class Poller(threading.Thread):
    """An S1 system polling `PublicationDate gt <last>` in pages, alternately through the API processes."""

    def __init__(self, urls: list[str], token: Callable[[], str]) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.token = token
        self.headers = {"Authorization": f"Bearer {token()}"}
        self.seen: list[tuple[str, str]] = []  # (PublicationDate, Name) in the order received
        self.failovers = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = "2000-01-01T00:00:00.000Z"
        turns = itertools.cycle(range(len(self.urls)))
        while not self.stop.is_set():
            page = self._page(next(turns), last)
            if page is None:
                continue
            for product in page:
                self.seen.append((product["PublicationDate"], product["Name"]))
                last = product["PublicationDate"]
            if not page:
                time.sleep(0.2)

    def _page(self, turn: int, last: str) -> list[dict[str, Any]] | None:
        params = {"$filter": f"PublicationDate gt {last}", "$orderby": "PublicationDate asc", "$top": "100"}
        for index in (turn, *[i for i in range(len(self.urls)) if i != turn]):
            try:
                response = requests.get(f"{self.urls[index]}/odata/v1/Products", params=params,
                                        headers=self.headers, timeout=30)  # fmt: skip
            except requests.ConnectionError:
                self.failovers += 1  # that process is gone: the next one answers, as behind a Service
                continue
            if response.status_code == 401:
                self.headers = {"Authorization": f"Bearer {self.token()}"}  # expired: log in again, as clients do
                return None
            if response.status_code != 200:
                self.errors.append(f"{response.status_code} {response.text[:300]}")
                time.sleep(0.5)
                return None
            return list(response.json()["value"])
        self.errors.append("no API process answered")
        time.sleep(0.5)
        return None


@pytest.fixture
def backends(tmp_path: Path, postgres: PostgresServer, s3_server: S3Server, kafka: str) -> Iterator[dict[str, Any]]:
    database = postgres.create_database("scale_out")
    buckets = {role: S3Server.fresh_bucket_name(f"scale-{role}") for role in ("products", "inputs", "routed")}
    client = s3_server.client()
    for bucket in buckets.values():
        client.create_bucket(Bucket=bucket)
    prefix = f"scale{uuid.uuid4().hex[:8]}."
    _create_topic(kafka, f"{prefix}{PRODUCT_PUBLISHED}")
    try:
        yield {"catalog_url": database.sqlalchemy_url, "buckets": buckets, "client": client, "topic_prefix": prefix}
    finally:
        client.close()
        postgres.drop_database(database.dbname)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _staged_on(engine: Engine, node: str) -> set[int]:
    with engine.connect() as conn:
        query = select(IngestItem.id).where(IngestItem.staged_on == node, IngestItem.state.in_(STAGED_STATES))
        return set(conn.execute(query).scalars())


def _refetched(engine: Engine, items: set[int]) -> dict[int, tuple[str, bool]]:
    """(state, sent back to be fetched again) of each item."""
    with engine.connect() as conn:
        rows = conn.execute(select(IngestItem.id, IngestItem.state, IngestItem.details).where(IngestItem.id.in_(items)))
        return {item: (state, "refetch" in json.loads(details or "{}")) for item, state, details in rows}


def _product_ids(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {name: str(product_id) for name, product_id in conn.execute(select(Product.name, Product.id))}


def _delivered(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(RouteDelivery.target, RouteDelivery.state))
        return Counter(target for target, state in rows if state == "delivered")


def test_the_production_topology_scales_out_and_survives_losing_a_worker_and_an_api_process(
    tmp_path: Path,
    backends: dict[str, Any],
    s3_server: S3Server,
    kafka: str,
    clamd: ClamdServer,
    keycloak: KeycloakServer,
    sftp_server: SftpServer,
    notification_recorder: NotificationRecorder,
) -> None:
    buckets, client = backends["buckets"], backends["client"]
    s3_access = {"endpoint_url": s3_server.endpoint_url, "region": s3_server.region}
    s3_credentials = credentials_file(tmp_path, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    sftp_folder = sftp_server.root / f"out-{uuid.uuid4().hex[:6]}"
    sftp_folder.mkdir()
    routed_dir = tmp_path / "routed"
    routed_dir.mkdir()
    document = {
        "catalog": {"url": backends["catalog_url"], "migrate": False},
        "storage": {"url": f"s3://{buckets['products']}/products", "s3": s3_access},
        "bus": {"url": f"kafka://{kafka}", "topic_prefix": backends["topic_prefix"]},
        "auth": {"local_users": False, "keycloak": [{"issuer": keycloak.issuer, "jwks_url": keycloak.jwks_url}]},
        "scanner": {"url": f"tcp://{clamd.host}:{clamd.port}"},
        "sources": [
            {
                "name": "sftp",
                "url": f"sftp://{sftp_server.username}@{sftp_server.host}:{sftp_server.port}{sftp_folder}",
                "credentials": credentials_file(
                    tmp_path, private_key=sftp_server.private_key, known_hosts=sftp_server.known_hosts
                ),
            },
            {"name": "s3", "url": f"s3://{buckets['inputs']}/aux", "credentials": s3_credentials, **s3_access},
        ],
        "ingest": {**FAST, "lease_seconds": 5},
        "routes": [
            {
                "name": "everything",
                "trigger": {"event": "product.published"},
                "targets": [
                    {"name": "directory", "url": routed_dir.as_uri()},
                    {"name": "bucket", "url": f"s3://{buckets['routed']}/routed", "credentials": s3_credentials,
                     **s3_access},
                ],
            }
        ],
    }  # fmt: skip
    sources = document["sources"]
    assert isinstance(sources, list)
    for source in sources:
        source.update({"poll_interval": 0.5, "settle_seconds": 0})
    environ = serve_environment() | {
        "AUXIP_S3_ACCESS_KEY": s3_server.access_key,
        "AUXIP_S3_SECRET_KEY": s3_server.secret_key,
    }

    def config_of(name: str) -> dict[str, Any]:
        return document | {"data_dir": str(tmp_path / name / "data"), "api": {"listen": f"127.0.0.1:{free_port()}"}}

    # The migration Job, once; the processes only check the schema (catalog.migrate: false).
    job = tmp_path / "migrate.yaml"
    job.write_text(yaml.safe_dump(config_of("migrate-job")))
    subprocess.run([AUXIP, "migrate", "--config", str(job)], env=environ, check=True, capture_output=True)

    processes: list[ServeProcess] = []
    engine = make_engine(backends["catalog_url"])
    watcher = ClaimWatcher(engine)
    poller: Poller | None = None
    try:

        def start(roles: list[str]) -> None:
            for role in roles:
                for index in range(TOPOLOGY[role]):
                    name = f"{role}-{index}"
                    processes.append(start_serve(tmp_path, name, config_of(name), environ, roles=[role]))

            def all_ready() -> bool:
                with contextlib.suppress(requests.ConnectionError):
                    return all(requests.get(f"{p.base_url}/health/ready", timeout=5).ok for p in processes)
                return False

            wait_until(all_ready, 60, "every process ready", processes)

        # Every role but ingestion first: the subscription must exist before the first publication.
        start([role for role in TOPOLOGY if role != "ingest"])
        by_name = {process.name: process for process in processes}
        subscription = requests.post(
            f"{by_name['api-0'].base_url}/odata/v1/Subscriptions",
            json={
                "FilterParam": "contains(Name,'S1')",
                "NotificationEndpoint": notification_recorder.url,
                "NotificationEpUsername": notification_recorder.username,
                "NotificationEpPassword": notification_recorder.password,
            },
            headers={"Authorization": f"Bearer {keycloak.access_token()}"},
            timeout=30,
        )
        assert subscription.status_code == 201, subscription.text
        poller = Poller([by_name["api-0"].base_url, by_name["api-1"].base_url], keycloak.access_token)
        poller.start()

        # The feed, complete before ingestion starts (S3Proxy lists objects still being written under temporary
        # keys): half on the SFTP server, half in the S3 source bucket.
        staging = tmp_path / "feed"
        sftp_inputs = feed(sftp_folder, PER_SOURCE, seed=71, sizes=SIZES)
        s3_inputs = feed(staging / "s3", PER_SOURCE, seed=72, start=EPOCH + timedelta(days=90), sizes=SIZES)
        for path in s3_inputs:
            upload_tree(client, buckets["inputs"], path, f"aux/{path.name}")
        total = len(sftp_inputs) + len(s3_inputs)
        start(["ingest"])
        by_name = {process.name: process for process in processes}

        # One ingest process dies with items staged on its own disk; it is not restarted.
        victim, survivor = by_name["ingest-0"], by_name["ingest-1"]
        victim_node = staging_node(victim.config.staging_dir)
        wait_until(
            lambda: len(published(engine)) >= total // 10 and len(_staged_on(engine, victim_node)) >= 3,
            120, "a tenth published, and items staged on ingest-0", processes,
        )  # fmt: skip
        victim.kill()
        staged_at_kill = _staged_on(engine, victim_node)
        alive = [p for p in processes if p is not victim]

        # Then one API process, mid-poll.
        wait_until(lambda: len(published(engine)) >= total // 2, 300, "half published", processes, alive)
        by_name["api-0"].kill()
        alive.remove(by_name["api-0"])

        def all_announced() -> bool:
            current = states(engine)
            return len(current) == total and set(current.values()) == {"announced"}

        wait_until(all_announced, 600, f"{total} products announced", processes, alive)
        wait_until(lambda: len(poller.seen) >= total, 60, "the poller caught up", processes, alive)
        wait_until(lambda: sum(_delivered(engine).values()) >= 2 * total, 300, "every delivery", processes, alive)
        wait_until(lambda: len(notification_recorder.received) >= total, 120, "every notification", processes, alive)
        time.sleep(2.0)  # more sweeps of every process: a second publication, delivery or notification would show
        with engine.connect() as conn:  # before the clean stop gives it back
            eviction_holder = conn.execute(
                select(SingletonLease.holder).where(SingletonLease.name == EVICTION_LEASE)
            ).scalar_one_or_none()
    finally:
        if poller is not None:
            poller.stop.set()
            poller.join(timeout=60)
        watcher.stop()
        for process in processes:
            process.stop()

    products = published(engine)
    ids = _product_ids(engine)
    finished = _refetched(engine, staged_at_kill)
    engine.dispose()
    print(
        f"\n{total} inputs, {len(products)} products; ingest-0 killed with {len(staged_at_kill)} items staged; "
        f"claims per process: { {p.name: watcher.by_pid()[p.pid] for p in processes} }; "
        f"poller: {len(poller.seen)} products seen, {poller.failovers} failovers, errors {poller.errors[:3]}"
    )
    names = {product.name for product in products.values()}
    assert len(products) == total

    # Published once each, with the right bytes.
    stored = bucket_objects(client, buckets["products"], "products/")
    assert sorted(stored) == sorted(product.storage_key for product in products.values())
    for product in products.values():
        data = stored[product.storage_key]
        assert (len(data), _md5(data)) == (product.size, product.md5), product.name

    # The poller: every product once, in publication order, no gap.
    assert poller.errors == []
    assert [name for _date, name in poller.seen if Counter(n for _d, n in poller.seen)[name] > 1] == []
    assert {name for _date, name in poller.seen} == names
    dates = [date for date, _name in poller.seen]
    assert dates == sorted(dates)
    assert len(set(dates)) == len(dates)
    assert poller.failovers > 0, "the poller never needed the other API process: the kill did not happen mid-poll"

    # One notification per product; each target holds each file once, nothing at a temporary name.
    notified = Counter(body["ProductId"] for body in notification_recorder.received)
    assert set(notified.values()) == {1}
    assert set(notified) == set(ids.values())
    assert sorted(path.name for path in routed_dir.iterdir()) == sorted(names)
    routed = bucket_objects(client, buckets["routed"], "routed/")
    assert sorted(routed) == sorted(names)
    by_name_md5 = {product.name: product.md5 for product in products.values()}
    assert all(_md5(data) == by_name_md5[name] for name, data in routed.items())

    # The killed worker's staged items were fetched again and finished by the other one (the only ingest process
    # left); eviction has one holder, the evict process.
    assert staged_at_kill, "ingest-0 had nothing staged when killed"
    # Most are fetched again; one whose product the dead process had already stored goes on from the store.
    assert {item: state for item, (state, _refetched) in finished.items()} == dict.fromkeys(staged_at_kill, "announced")
    assert sum(refetched for _state, refetched in finished.values()) > len(staged_at_kill) // 2
    assert watcher.by_pid()[survivor.pid] > 0
    assert eviction_holder is not None
    assert f":{by_name['evict-0'].pid}:" in eviction_holder

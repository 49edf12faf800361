"""The routing engine end to end: real SFTP, FTP, S3 and directory targets, a real clamd, the real pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from auxip.catalog.models import Checksum, Product
from auxip.ingest.bus import PRODUCT_PUBLISHED, DatabaseBus
from auxip.ingest.quarantine import list_entries
from auxip.routing.engine import list_deliveries, retry_dead
from auxip.routing.models import RouteAttempt, RouteDelivery
from auxip_testing.clamd import ClamdServer, eicar
from auxip_testing.ftp import FtpServer
from auxip_testing.ingest import credentials_file, pipeline_config, published, running_pipeline, settled, wait_until
from auxip_testing.process import free_port
from auxip_testing.s3 import S3Server
from auxip_testing.sample_feed import feed
from auxip_testing.sftp import SftpServer

pytestmark = pytest.mark.integration


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _files(directory: Path, count: int, size: int = 200_000) -> dict[str, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    contents = {f"MPL_SCHEDULE_{index:03d}.xml": secrets.token_bytes(size) for index in range(count)}
    for name, data in contents.items():
        (directory / name).write_bytes(data)
    return contents


def _deliveries(engine: Any) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(RouteDelivery.file_name, RouteDelivery.target, RouteDelivery.state))
        return sorted((name, target, state) for name, target, state in rows)


def _attempts(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RouteAttempt)).scalar_one())


@pytest.fixture
def bucket(s3_server: S3Server) -> tuple[Any, str]:
    client = s3_server.client()
    name = f"out-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    return client, name


def _s3_target(tmp_path: Path, s3_server: S3Server, bucket: str) -> dict[str, Any]:
    return {
        "name": "archive",
        "url": f"s3://{bucket}/incoming",
        "endpoint_url": s3_server.endpoint_url,
        "region": s3_server.region,
        "credentials": credentials_file(tmp_path, access_key=s3_server.access_key, secret_key=s3_server.secret_key),
    }


def _sftp_target(tmp_path: Path, sftp_server: SftpServer, folder: str, port: int | None = None) -> dict[str, Any]:
    (sftp_server.root / folder).mkdir(parents=True, exist_ok=True)
    host = f"{sftp_server.host}:{port or sftp_server.port}"
    known_hosts = sftp_server.known_hosts
    if port is not None:  # reached through a relay on another port: the same host key, pinned for that port
        known_hosts = tmp_path / "known_hosts_relay"
        key = sftp_server.known_hosts_line.split(" ", 1)[1]
        known_hosts.write_text(f"[{sftp_server.host}]:{port} {key}\n")
    credentials = credentials_file(tmp_path, private_key=sftp_server.private_key, known_hosts=known_hosts)
    return {
        "name": "fos",
        "url": f"sftp://{sftp_server.username}@{host}{sftp_server.root / folder}",
        "credentials": credentials,
    }


def _ftp_target(tmp_path: Path, ftp_server: FtpServer, folder: str) -> dict[str, Any]:
    (ftp_server.root / folder).mkdir(parents=True, exist_ok=True)
    (ftp_server.root / folder).chmod(0o777)
    return {
        "name": "partner",
        "url": f"ftp://{ftp_server.host}:{ftp_server.port}/{folder}",
        "credentials": credentials_file(tmp_path, username=ftp_server.username, password=ftp_server.password),
    }


async def test_fan_out_to_three_targets_once_each_then_deleted_at_the_source(
    tmp_path: Path,
    clamd: ClamdServer,
    sftp_server: SftpServer,
    ftp_server: FtpServer,
    s3_server: S3Server,
    bucket: tuple[Any, str],
) -> None:
    client, bucket_name = bucket
    outbox = tmp_path / "mp-outbox"
    contents = _files(outbox, 3)
    (outbox / "infected.xml").write_bytes(eicar())
    folder = f"in-{uuid.uuid4().hex[:6]}"
    route = {
        "name": "mp-out",
        "trigger": {"source": "mp-outbox"},
        "targets": [
            _sftp_target(tmp_path, sftp_server, folder),
            _ftp_target(tmp_path, ftp_server, folder),
            _s3_target(tmp_path, s3_server, bucket_name),
        ],
        "post_delivery": {"action": "delete"},
    }
    config = pipeline_config(
        tmp_path / "data", [{"name": "mp-outbox", "url": outbox.as_uri()}], f"tcp://{clamd.host}:{clamd.port}",
        routes=[route],
    )  # fmt: skip
    async with running_pipeline(config) as engine:
        final = await settled(engine, len(contents) + 1)
        deliveries = _deliveries(engine)
        quarantined = [(entry.name, entry.reason) for entry in list_entries(engine)]
        products = published(engine)
    assert {name: state for name, state in final.items()} == {
        **{name: "routed" for name in contents},
        "infected.xml": "quarantined",
    }
    assert quarantined == [("infected.xml", "infected")]  # nothing unscanned crosses the platform
    assert products == {}  # routed, not published
    assert deliveries == sorted(
        (name, target, "delivered") for name in contents for target in ("fos", "partner", "archive")
    )
    for name, data in contents.items():
        assert (sftp_server.root / folder / name).read_bytes() == data
        assert (ftp_server.root / folder / name).read_bytes() == data
        body = client.get_object(Bucket=bucket_name, Key=f"incoming/{name}")["Body"].read()
        assert _md5(body) == _md5(data)
    # No temporary upload names left anywhere, and the source copies were deleted after every target had them.
    assert sorted(p.name for p in (sftp_server.root / folder).iterdir()) == sorted(contents)
    assert sorted(p.name for p in (ftp_server.root / folder).iterdir()) == sorted(contents)
    assert sorted(p.name for p in outbox.iterdir()) == ["infected.xml"]


@contextlib.asynccontextmanager
async def _forwarder(port: int, target_port: int) -> AsyncIterator[None]:
    """A TCP relay on `port` to the real server on `target_port`: the target "comes back" when it starts."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_target_down_then_back_gets_everything_once(
    tmp_path: Path, clamd: ClamdServer, sftp_server: SftpServer
) -> None:
    outbox = tmp_path / "outbox"
    contents = _files(outbox, 4, size=50_000)
    folder = f"in-{uuid.uuid4().hex[:6]}"
    port = free_port()
    route = {
        "name": "to-fos",
        "trigger": {"source": "outbox"},
        "targets": [_sftp_target(tmp_path, sftp_server, folder, port=port)],
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 0.5,
    }
    config = pipeline_config(
        tmp_path / "data", [{"name": "outbox", "url": outbox.as_uri()}], f"tcp://{clamd.host}:{clamd.port}",
        routes=[route], ingest={"circuit_threshold": 3, "circuit_open_seconds": 0.5},
    )  # fmt: skip
    async with running_pipeline(config) as engine:
        await wait_until(lambda: _attempts(engine) >= 4, 20, "failed attempts while the target is down")
        assert all(state == "pending" for _n, _t, state in _deliveries(engine))
        assert not any((sftp_server.root / folder).iterdir())
        async with _forwarder(port, sftp_server.port):
            final = await settled(engine, len(contents), timeout=60)
    assert set(final.values()) == {"routed"}
    assert sorted(p.name for p in (sftp_server.root / folder).iterdir()) == sorted(contents)
    for name, data in contents.items():
        assert (sftp_server.root / folder / name).read_bytes() == data


async def test_duplicate_published_events_give_one_delivery_and_a_bad_checksum_is_dead_lettered(
    tmp_path: Path, clamd: ClamdServer
) -> None:
    inbox = tmp_path / "inbox"
    inputs = feed(inbox, 3, seed=21, sizes=(20_000, 60_000))
    archive = tmp_path / "archive"
    archive.mkdir()
    route = {
        "name": "orbits-to-archive",
        "trigger": {"event": "product.published"},
        "targets": [{"name": "archive", "url": archive.as_uri()}],
        "max_attempts": 3,
        "retry_base_seconds": 0.1,
        "retry_max_seconds": 0.2,
    }
    config = pipeline_config(
        tmp_path / "data", [{"name": "feed", "url": inbox.as_uri()}], f"tcp://{clamd.host}:{clamd.port}",
        routes=[route],
    )  # fmt: skip
    async with running_pipeline(config) as engine:
        await settled(engine, len(inputs))
        names = sorted(published(engine))
        await wait_until(
            lambda: sorted(p.name for p in archive.iterdir()) == names, 20, "every product delivered to the archive"
        )
        # The same event again (a redelivery by the bus): no second delivery.
        bus = DatabaseBus(engine)
        for name in names:
            await bus.publish(PRODUCT_PUBLISHED, name, {"ProductName": name})
        await asyncio.sleep(1.5)
        assert len(list_deliveries(engine)) == len(names)
        assert all(delivery["state"] == "delivered" for delivery in list_deliveries(engine))

        # A product whose catalog MD5 does not match its bytes: every attempt fails verification, then dead letter.
        liar = names[0]
        with engine.begin() as conn:
            liar_id = select(Product.id).where(Product.name == liar).scalar_subquery()
            conn.execute(update(Checksum).where(Checksum.product_id == liar_id).values(value="0" * 32))
            conn.execute(update(RouteDelivery).where(RouteDelivery.file_name == liar).values(
                state="pending", attempts=0, md5="0" * 32))  # fmt: skip
        (archive / liar).unlink()
        await wait_until(
            lambda: [d["state"] for d in list_deliveries(engine, "dead")] == ["dead"], 20, "the liar dead-lettered"
        )
        dead = list_deliveries(engine, "dead")[0]
        assert dead["file_name"] == liar
        assert dead["attempts"] == 3
        assert "VerificationError" in dead["last_error"]
        assert not (archive / liar).exists()
        assert not [p for p in archive.iterdir() if p.name.startswith(".")]  # no temporary left behind
        # The operator fixes the catalog and retries: delivered.
        with engine.begin() as conn:
            real = hashlib.md5((config.data_dir / "products" / next(
                p.storage_key for p in published(engine).values() if p.name == liar)).read_bytes(),
                usedforsecurity=False).hexdigest()  # fmt: skip
            conn.execute(update(RouteDelivery).where(RouteDelivery.file_name == liar).values(md5=real))
        assert retry_dead(engine) == 1
        await wait_until(lambda: (archive / liar).exists(), 20, "delivered after the retry")

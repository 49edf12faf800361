"""Routing from FTP, WebDAV and S3 sources with post-delivery actions, and into an S3 inbox (`inbox://<app>` resolved
through `inboxes`), end to end: the real pipeline and clamd, the harness's vsftpd, nginx dav and S3Proxy."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auxip.config import AuxipConfig
from auxip.routing.engine import list_deliveries
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.factory import open_target
from auxip_testing.clamd import ClamdServer
from auxip_testing.ftp import FtpServer
from auxip_testing.http import WebDavServer
from auxip_testing.ingest import credentials_file, pipeline_config, published, running_pipeline, settled, wait_until
from auxip_testing.s3 import S3Server
from auxip_testing.sample_feed import feed

pytestmark = pytest.mark.integration

HOUR_AGO = time.time() - 3600


def _s3_access(tmp_path: Path, s3_server: S3Server) -> dict[str, Any]:
    credentials = credentials_file(tmp_path, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    return {"endpoint_url": s3_server.endpoint_url, "region": s3_server.region, "credentials": credentials}


def _contents(count: int, stem: str) -> dict[str, bytes]:
    return {f"{stem}_{index:03d}.xml": secrets.token_bytes(40_000 + index) for index in range(count)}


def _write(folder: Path, contents: dict[str, bytes]) -> None:
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        os.utime(folder / name, (HOUR_AGO, HOUR_AGO))


def _shared_folder(root: Path) -> Iterator[Path]:
    folder = root / f"outbox-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    folder.chmod(0o777)  # vsftpd's user deletes there
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ftp_outbox(ftp_server: FtpServer) -> Iterator[Path]:
    yield from _shared_folder(ftp_server.root)


@pytest.fixture
def dav_outbox(webdav_server: WebDavServer) -> Iterator[Path]:
    yield from _shared_folder(webdav_server.root)


async def test_ftp_and_webdav_sources_delete_and_move_only_after_delivery(
    tmp_path: Path,
    clamd: ClamdServer,
    ftp_server: FtpServer,
    webdav_server: WebDavServer,
    ftp_outbox: Path,
    dav_outbox: Path,
) -> None:
    from_ftp, from_dav = _contents(3, "MPL_FTP"), _contents(3, "MPL_DAV")
    _write(ftp_outbox, from_ftp)
    _write(dav_outbox, from_dav)
    archive = tmp_path / "archive"
    archive.mkdir()
    sources = [
        {"name": "ftp-outbox", "url": f"ftp://{ftp_server.host}:{ftp_server.port}/{ftp_outbox.name}",
         "credentials": credentials_file(tmp_path, username=ftp_server.username, password=ftp_server.password)},
        {"name": "dav-outbox", "url": f"webdav://{webdav_server.host}:{webdav_server.port}/{dav_outbox.name}/",
         "credentials": credentials_file(tmp_path, username=webdav_server.username, password=webdav_server.password)},
    ]  # fmt: skip
    target = {"name": "archive", "url": archive.as_uri()}
    routes = [
        {"name": "ftp-out", "trigger": {"source": "ftp-outbox"}, "targets": [target],
         "post_delivery": {"action": "delete"}},
        {"name": "dav-out", "trigger": {"source": "dav-outbox"}, "targets": [target],
         "post_delivery": {"action": "move", "move_to": "done"}},
    ]  # fmt: skip
    config = pipeline_config(tmp_path / "data", sources, f"tcp://{clamd.host}:{clamd.port}", routes=routes)
    async with running_pipeline(config) as engine:
        final = await settled(engine, len(from_ftp) + len(from_dav))
        deliveries = list_deliveries(engine)
    assert set(final.values()) == {"routed"}
    assert {d["file_name"]: d["state"] for d in deliveries} == dict.fromkeys([*from_ftp, *from_dav], "delivered")
    assert {p.name: p.read_bytes() for p in archive.iterdir()} == {**from_ftp, **from_dav}
    assert list(ftp_outbox.iterdir()) == []  # deleted over FTP once the archive had each file
    assert sorted(p.name for p in dav_outbox.iterdir()) == ["done"]  # moved with WebDAV MOVE
    assert {p.name: p.read_bytes() for p in (dav_outbox / "done").iterdir()} == from_dav


async def test_hosted_app_exchange_s3_outbox_to_an_s3_inbox_then_moved_to_done(
    tmp_path: Path, clamd: ClamdServer, s3_server: S3Server
) -> None:
    """The exchange model of hosted applications: an application's S3 outbox routed to another one's `inbox://`,
    which `inboxes` puts on the exchange bucket, with the outbox copy moved to `done/` after delivery."""
    client = s3_server.client()
    bucket = s3_server.fresh_bucket_name("exchange")
    client.create_bucket(Bucket=bucket)
    contents = _contents(3, "MPL_PLAN")
    for name, data in contents.items():
        client.put_object(Bucket=bucket, Key=f"apps/mp/outbox/to-sra/{name}", Body=data)
    access = _s3_access(tmp_path, s3_server)
    config = pipeline_config(
        tmp_path / "data",
        [{"name": "mp-to-sra", "url": f"s3://{bucket}/apps/mp/outbox/to-sra/", **access}],
        f"tcp://{clamd.host}:{clamd.port}",
        routes=[{"name": "mp-to-sra", "trigger": {"source": "mp-to-sra"},
                 "targets": [{"name": "sra-inbox", "url": "inbox://sra"}],
                 "post_delivery": {"action": "move", "move_to": "done"}}],
        inboxes={"sra": {"url": f"s3://{bucket}/apps/sra/inbox/", **access}},
    )  # fmt: skip
    assert config.routes[0].targets[0].url == f"s3://{bucket}/apps/sra/inbox/"
    async with running_pipeline(config) as engine:
        final = await settled(engine, len(contents))
        deliveries = list_deliveries(engine)
    assert set(final.values()) == {"routed"}
    assert {d["location"] for d in deliveries} == {f"s3://{bucket}/apps/sra/inbox/{name}" for name in contents}
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"apps/sra/inbox/{name}" for name in contents} | {
        f"apps/mp/outbox/to-sra/done/{name}" for name in contents
    }
    for name, data in contents.items():
        assert client.get_object(Bucket=bucket, Key=f"apps/sra/inbox/{name}")["Body"].read() == data
        assert client.get_object(Bucket=bucket, Key=f"apps/mp/outbox/to-sra/done/{name}")["Body"].read() == data
    client.close()


async def test_published_products_to_an_s3_inbox(tmp_path: Path, clamd: ClamdServer, s3_server: S3Server) -> None:
    client = s3_server.client()
    bucket = s3_server.fresh_bucket_name("inbox")
    client.create_bucket(Bucket=bucket)
    incoming = tmp_path / "incoming"
    inputs = feed(incoming, 2, seed=5, sizes=(20_000, 40_000))
    config = pipeline_config(
        tmp_path / "data", [{"name": "feed", "url": incoming.as_uri()}], f"tcp://{clamd.host}:{clamd.port}",
        routes=[{"name": "to-mp", "trigger": {"event": "product.published"},
                 "targets": [{"name": "mp-inbox", "url": "inbox://mp"}]}],
        inboxes={"mp": {"url": f"s3://{bucket}/hosted/mp/inbox", **_s3_access(tmp_path, s3_server)}},
    )  # fmt: skip
    async with running_pipeline(config) as engine:
        await settled(engine, len(inputs))
        products = published(engine)
        await wait_until(
            lambda: (
                len(list_deliveries(engine)) == len(products)
                and all(d["state"] == "delivered" for d in list_deliveries(engine))
            ),
            30,
            "every product in the S3 inbox",
        )
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket, Prefix="hosted/mp/inbox/")["Contents"]}
    assert keys == {f"hosted/mp/inbox/{name}" for name in products}
    for name, product in products.items():
        stored = (config.data_dir / "products" / product.storage_key).read_bytes()
        assert client.get_object(Bucket=bucket, Key=f"hosted/mp/inbox/{name}")["Body"].read() == stored
    client.close()


async def test_an_s3_inbox_target_delivers_with_the_s3_adapter(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = s3_server.client()
    bucket = s3_server.fresh_bucket_name("inbox")
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("EXCHANGE_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("EXCHANGE_SECRET_KEY", s3_server.secret_key)
    inbox = {"url": f"s3://{bucket}/apps/sra/inbox/", "endpoint_url": s3_server.endpoint_url,
             "region": s3_server.region, "credentials": "env:EXCHANGE"}  # fmt: skip
    route = {"name": "r", "trigger": {"event": "product.published"},
             "targets": [{"name": "sra-inbox", "url": "inbox://sra"}]}  # fmt: skip
    config = AuxipConfig.model_validate({"data_dir": str(tmp_path), "inboxes": {"sra": inbox}, "routes": [route]})
    target: TargetSettings = config.routes[0].targets[0]
    local = tmp_path / "S1A_OPER_AUX_RESORB_OPOD_20240101T001234_V20231231T210000_20240101T010000.EOF"
    local.write_bytes(os.urandom(123_456))
    md5 = hashlib.md5(local.read_bytes(), usedforsecurity=False).hexdigest()
    adapter = open_target(target, config.inbox_dir)
    try:
        delivered = await adapter.deliver(local, local.name, md5)
        assert await adapter.exists(local.name) == 123_456
    finally:
        await adapter.close()
    assert (delivered.location, delivered.verified) == (f"s3://{bucket}/apps/sra/inbox/{local.name}", "size+etag")
    body = client.get_object(Bucket=bucket, Key=f"apps/sra/inbox/{local.name}")["Body"].read()
    assert body == local.read_bytes()
    client.close()

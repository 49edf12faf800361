"""The whole pipeline through every remote source type, each against its real server on loopback.

Per source: two EOF files and one SAFE product (a folder, or an already-zipped `.SAFE.zip` for the OData source)
end published with the catalog MD5 of the stored bytes. OData also checks the source's MD5 against the fetched bytes:
a product whose advertised checksum is wrong is quarantined once, not downloaded again and again.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import secrets
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from auxip.auth import Role
from auxip.catalog.models import Checksum, Product
from auxip.catalog.records import ProductRecord
from auxip.ingest.models import IngestItem
from auxip.ingest.quarantine import list_entries
from auxip_testing.api_server import default_config, publish_content, run_api
from auxip_testing.clamd import ClamdServer
from auxip_testing.ftp import FtpServer
from auxip_testing.http import HttpServer, WebDavServer
from auxip_testing.ingest import credentials_file, md5_of, pipeline_config, published, running_pipeline, settled
from auxip_testing.s3 import S3Server, upload_tree
from auxip_testing.sample_feed import write_eof, write_safe
from auxip_testing.sftp import SftpServer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 29, 6, tzinfo=UTC)


def _products(directory: Path) -> list[Path]:
    """Three inputs uploaded ten minutes ago (FTP LIST dates are to the minute: a newer folder waits for it to end)."""
    directory.mkdir(parents=True, exist_ok=True)
    inputs = [
        write_eof(directory, "AUX_POEORB", "A", T0, T0 - timedelta(days=1), T0),
        write_eof(directory, "MPL_ORBPRE", "B", T0, T0, T0 + timedelta(days=10)),
        write_safe(directory, "AUX_WND", None, T0, T0, T0 + timedelta(hours=6)),
    ]
    uploaded = time.time() - 600
    for path in [*directory.rglob("*"), directory]:
        os.utime(path, (uploaded, uploaded))
    return inputs


async def _ingest(tmp_path: Path, clamd: ClamdServer, source: dict[str, Any], expected: list[str]) -> None:
    config = pipeline_config(tmp_path / "data", [{"name": "remote", **source}], f"tcp://{clamd.host}:{clamd.port}")
    async with running_pipeline(config) as engine:
        final = await settled(engine, len(expected))
        products = published(engine)
    assert set(final.values()) == {"announced"}, final
    assert sorted(products) == sorted(expected)
    for product in products.values():
        assert md5_of(config.data_dir / "products" / product.storage_key) == product.md5


def _published_names(inputs: list[Path]) -> list[str]:
    return [f"{path.name}.zip" for path in inputs]


async def test_sftp_source(tmp_path: Path, clamd: ClamdServer, sftp_server: SftpServer) -> None:
    folder = f"in-{uuid.uuid4().hex[:6]}"
    inputs = _products(sftp_server.root / folder)
    credentials = credentials_file(tmp_path, private_key=sftp_server.private_key, known_hosts=sftp_server.known_hosts)
    url = f"sftp://{sftp_server.username}@{sftp_server.host}:{sftp_server.port}{sftp_server.root / folder}"
    await _ingest(tmp_path, clamd, {"url": url, "credentials": credentials}, _published_names(inputs))


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
async def test_ftp_and_ftps_sources(
    tmp_path: Path, clamd: ClamdServer, ftp_server: FtpServer, ftps_server: FtpServer, tls: bool
) -> None:
    server = ftps_server if tls else ftp_server
    folder = f"in-{uuid.uuid4().hex[:6]}"
    inputs = _products(server.root / folder)
    credentials = credentials_file(tmp_path, username=server.username, password=server.password)
    source: dict[str, Any] = {
        "url": f"{'ftps' if tls else 'ftp'}://{server.host}:{server.port}/{folder}",
        "credentials": credentials,
    }
    if tls:
        source["ca_file"] = str(server.ca_file)
    await _ingest(tmp_path, clamd, source, _published_names(inputs))


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_http_listing_sources(tmp_path: Path, clamd: ClamdServer, http_server: HttpServer, scheme: str) -> None:
    folder = f"in-{uuid.uuid4().hex[:6]}"
    inputs = _products(http_server.root / folder)
    port = http_server.https_port if scheme == "https" else http_server.http_port
    source = {"url": f"{scheme}://{http_server.host}:{port}/{folder}/", "ca_file": str(http_server.ca)}
    await _ingest(tmp_path, clamd, source, _published_names(inputs))


async def test_webdav_source(tmp_path: Path, clamd: ClamdServer, webdav_server: WebDavServer) -> None:
    folder = f"in-{uuid.uuid4().hex[:6]}"
    inputs = _products(webdav_server.root / folder)
    credentials = credentials_file(tmp_path, username=webdav_server.username, password=webdav_server.password)
    source = {"url": f"webdav://{webdav_server.host}:{webdav_server.port}/{folder}/", "credentials": credentials}
    await _ingest(tmp_path, clamd, source, _published_names(inputs))


async def test_s3_source(tmp_path: Path, clamd: ClamdServer, s3_server: S3Server) -> None:
    bucket = f"in-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    inputs = _products(tmp_path / "upload")
    for path in inputs:
        upload_tree(client, bucket, path, f"aux/{path.name}")
    credentials = credentials_file(tmp_path, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    source = {
        "url": f"s3://{bucket}/aux",
        "endpoint_url": s3_server.endpoint_url,
        "region": s3_server.region,
        "credentials": credentials,
    }
    await _ingest(tmp_path, clamd, source, _published_names(inputs))


def _zipped(content: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        members = [content] if content.is_file() else [content, *sorted(content.rglob("*"))]
        for member in members:
            archive.write(member, member.relative_to(content.parent).as_posix())
    return buffer.getvalue()


def _record(name: str, start: datetime) -> ProductRecord:
    return ProductRecord(
        name=name,
        content_length=0,
        checksums={"MD5": "0" * 32},
        origin_date=start,
        content_date_start=start,
        storage_key=f"upstream/{name}",
        retention=timedelta(days=30),
    )


async def test_odata_source_verifies_the_advertised_md5(tmp_path: Path, clamd: ClamdServer) -> None:
    inputs = _products(tmp_path / "upstream-inputs")
    with run_api(default_config(tmp_path / "upstream")) as upstream:
        password = secrets.token_urlsafe(12)
        upstream.add_user("s1pdgs", password, Role.DOWNLOAD)
        for path in inputs:
            data = _zipped(path)
            upstream.call(publish_content(upstream.engine, upstream.storage, _record(f"{path.name}.zip", T0), data))
        # One more product whose catalog MD5 is wrong for its bytes: the upstream is inconsistent.
        liar = write_eof(tmp_path / "liar", "AUX_RESORB", "C", T0, T0 - timedelta(hours=3), T0)
        data = _zipped(liar)
        upstream.call(publish_content(upstream.engine, upstream.storage, _record(f"{liar.name}.zip", T0), data))
        with upstream.engine.begin() as conn:
            liar_id = select(Product.id).where(Product.name == f"{liar.name}.zip").scalar_subquery()
            conn.execute(update(Checksum).where(Checksum.product_id == liar_id).values(value="f" * 32))
        credentials = credentials_file(tmp_path, username="s1pdgs", password=password)
        host = upstream.config.api.listen
        config = pipeline_config(
            tmp_path / "data",
            [{"name": "upstream", "url": f"odata://{host}/odata/v1", "credentials": credentials}],
            f"tcp://{clamd.host}:{clamd.port}",
        )
        async with running_pipeline(config) as engine:
            final = await settled(engine, len(inputs) + 1)
            await asyncio.sleep(1.0)  # several more polls: the liar must not be fetched again
            products = published(engine)
            with engine.connect() as conn:
                items = conn.execute(select(func.count()).select_from(IngestItem)).scalar_one()
            entries = list_entries(engine)
    assert sorted(products) == sorted(_published_names(inputs))
    assert final[f"{liar.name}.zip"] == "quarantined"
    assert items == len(inputs) + 1
    assert [(entry.name, entry.reason) for entry in entries] == [(f"{liar.name}.zip", "checksum-mismatch")]
    for path in inputs:
        # Already in the S1PDGS form: published byte for byte as the upstream serves it.
        assert products[f"{path.name}.zip"].md5 == hashlib.md5(_zipped(path), usedforsecurity=False).hexdigest()

"""The HTTP(S) PUT target against the harness nginx (WebDAV with Basic auth, and the read-only listing server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.credentials import Credentials
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import Delivered, PermanentTargetError, Target, TransientTargetError
from auxip.routing.targets.http import HttpTarget
from auxip_testing.delivery import assert_a_redo_replaces_a_dead_attempt
from auxip_testing.http import HttpServer, WebDavServer
from auxip_testing.process import free_port

pytestmark = pytest.mark.integration

EOF_NAME = "S1B_OPER_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF"


@pytest.fixture
def remote(webdav_server: WebDavServer) -> Iterator[Path]:
    folder = webdav_server.root / f"outbox-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def target(base_url: str, folder: Path, credentials: Credentials, **settings: Any) -> HttpTarget:
    return HttpTarget(TargetSettings(name="dav-out", url=f"{base_url}{folder.name}/", **settings), credentials)


def login(server: WebDavServer, password: str | None = None) -> Credentials:
    return Credentials(username=server.username, password=password or server.password)


async def send(
    adapter: HttpTarget, tmp_path: Path, data: bytes, name: str = EOF_NAME, md5: str | None = None
) -> Delivered:
    local = tmp_path / f"staged-{uuid.uuid4().hex[:8]}"
    local.write_bytes(data)
    return await adapter.deliver(local, name, md5 or hashlib.md5(data).hexdigest())  # noqa: S324 - transfer checksum


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_delivers_replaces_and_leaves_nothing_else(
    webdav_server: WebDavServer, remote: Path, tmp_path: Path, tls: bool
) -> None:
    (remote / "unrelated.txt").write_bytes(b"keep me")
    base = webdav_server.https_url if tls else webdav_server.url
    adapter = target(base, remote, login(webdav_server), ca_file=str(webdav_server.ca))
    first, second = os.urandom(1_200_007), os.urandom(3)
    try:
        assert isinstance(adapter, Target)
        delivered = await send(adapter, tmp_path, first)
        assert (delivered.location, delivered.size) == (f"{base}{remote.name}/{EOF_NAME}", len(first))
        assert delivered.verified == "size"  # nginx's ETag is mtime-size, not an MD5
        assert (remote / EOF_NAME).read_bytes() == first
        await send(adapter, tmp_path, second)
        assert await adapter.exists(EOF_NAME) == len(second)
        assert await adapter.exists("absent.EOF") is None
    finally:
        await adapter.close()
    assert (remote / EOF_NAME).read_bytes() == second
    assert sorted(os.listdir(remote)) == [EOF_NAME, "unrelated.txt"]


async def test_concurrent_deliveries(webdav_server: WebDavServer, remote: Path, tmp_path: Path) -> None:
    files = {f"S1A_AUX_PP1_V20240101T0000{index:02d}_G20240101T000000.EOF": os.urandom(300_000) for index in range(10)}
    adapter = target(webdav_server.url, remote, login(webdav_server))
    try:
        await asyncio.gather(*(send(adapter, tmp_path, data, name) for name, data in files.items()))
    finally:
        await adapter.close()
    assert sorted(os.listdir(remote)) == sorted(files)
    assert all((remote / name).read_bytes() == data for name, data in files.items())


async def test_a_wrong_password_is_permanent(webdav_server: WebDavServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(webdav_server.url, remote, login(webdav_server, secrets.token_hex(8)))
    try:
        with pytest.raises(PermanentTargetError, match="HTTP 401"):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()
    assert os.listdir(remote) == []


async def test_an_untrusted_certificate_is_permanent(webdav_server: WebDavServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(webdav_server.https_url, remote, login(webdav_server))
    try:
        with pytest.raises(PermanentTargetError, match="TLS certificate verification failed"):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()
    assert os.listdir(remote) == []


async def test_a_server_that_takes_no_uploads_is_permanent(http_server: HttpServer, tmp_path: Path) -> None:
    folder = http_server.root / f"outbox-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    adapter = target(http_server.http_url, folder, Credentials())
    try:
        with pytest.raises(PermanentTargetError, match="takes no uploads"):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()
        shutil.rmtree(folder)


async def test_a_closed_port_is_transient(webdav_server: WebDavServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(f"http://127.0.0.1:{free_port()}/", remote, login(webdav_server))
    try:
        with pytest.raises(TransientTargetError):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()


async def test_a_redo_replaces_what_a_killed_process_left(
    webdav_server: WebDavServer, remote: Path, tmp_path: Path
) -> None:
    adapter = target(webdav_server.url, remote, login(webdav_server))
    try:
        await assert_a_redo_replaces_a_dead_attempt(adapter, remote, tmp_path)
    finally:
        await adapter.close()

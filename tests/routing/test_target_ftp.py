"""The FTP and FTPS target against the harness vsftpd servers: byte-exact delivery, replace, refusals, TLS."""

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
from auxip.routing.targets.ftp import FtpTarget
from auxip_testing.delivery import assert_a_redo_replaces_a_dead_attempt
from auxip_testing.ftp import FTP_USER, FtpServer
from auxip_testing.process import free_port

pytestmark = pytest.mark.integration

EOF_NAME = "S1A_OPER_AUX_RESORB_OPOD_20240101T001234_V20231231T210000_20240101T010000.EOF"


def folder_for(server: FtpServer) -> Iterator[Path]:
    """A directory of its own in the shared chroot, writable by the FTP login."""
    folder = server.root / f"outbox-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    shutil.chown(folder, FTP_USER, FTP_USER)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def remote(ftp_server: FtpServer) -> Iterator[Path]:
    yield from folder_for(ftp_server)


@pytest.fixture
def tls_remote(ftps_server: FtpServer) -> Iterator[Path]:
    yield from folder_for(ftps_server)


def target(server: FtpServer, folder: Path, *, password: str | None = None, **settings: Any) -> FtpTarget:
    scheme = "ftps" if server.tls else "ftp"
    url = f"{scheme}://{server.host}:{settings.pop('port', server.port)}/{folder.relative_to(server.root)}"
    if server.ca_file is not None:
        settings.setdefault("ca_file", str(server.ca_file))
    credentials = Credentials(username=server.username, password=password or server.password)
    return FtpTarget(TargetSettings(name="ftp-out", url=url, **settings), credentials)


async def send(adapter: FtpTarget, tmp_path: Path, data: bytes, name: str = EOF_NAME) -> Delivered:
    """Stage `data` and deliver it as `name` with its true MD5."""
    local = tmp_path / f"staged-{uuid.uuid4().hex[:8]}"
    local.write_bytes(data)
    return await adapter.deliver(local, name, hashlib.md5(data).hexdigest())  # noqa: S324 - a transfer checksum


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
async def test_delivers_replaces_and_leaves_nothing_else(
    request: pytest.FixtureRequest, tls: bool, tmp_path: Path
) -> None:
    server: FtpServer = request.getfixturevalue("ftps_server" if tls else "ftp_server")
    remote: Path = request.getfixturevalue("tls_remote" if tls else "remote")
    (remote / "unrelated.txt").write_bytes(b"keep me")
    first, second = os.urandom(1_500_001), os.urandom(1000)
    adapter = target(server, remote)
    try:
        assert isinstance(adapter, Target)
        delivered = await send(adapter, tmp_path, first)
        assert (remote / EOF_NAME).read_bytes() == first
        assert (delivered.location, delivered.size, delivered.verified) == (
            f"/{remote.name}/{EOF_NAME}", len(first), "size")  # fmt: skip
        await send(adapter, tmp_path, second)
        assert await adapter.exists(EOF_NAME) == len(second)
        assert await adapter.exists("absent.EOF") is None
    finally:
        await adapter.close()
    assert (remote / EOF_NAME).read_bytes() == second
    assert (remote / "unrelated.txt").read_bytes() == b"keep me"
    assert sorted(os.listdir(remote)) == [EOF_NAME, "unrelated.txt"]


async def test_parallel_deliveries_through_the_pool(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    files = {f"S1B_AUX_PP2_V20240101T0000{index:02d}_G20240101T000000.EOF": os.urandom(300_000) for index in range(8)}
    adapter = target(ftp_server, remote, concurrency=3)
    try:
        await asyncio.gather(*(send(adapter, tmp_path, data, name) for name, data in files.items()))
    finally:
        await adapter.close()
    assert sorted(os.listdir(remote)) == sorted(files)
    assert all((remote / name).read_bytes() == data for name, data in files.items())


async def test_a_wrong_password_is_permanent(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(ftp_server, remote, password=secrets.token_hex(8))
    with pytest.raises(PermanentTargetError, match="login refused"):
        await send(adapter, tmp_path, b"x")
    await adapter.close()


async def test_an_untrusted_certificate_is_permanent(ftps_server: FtpServer, tls_remote: Path, tmp_path: Path) -> None:
    adapter = target(ftps_server, tls_remote, ca_file=None)
    with pytest.raises(PermanentTargetError, match="certificate verification failed"):
        await send(adapter, tmp_path, b"x")
    await adapter.close()
    assert os.listdir(tls_remote) == []


async def test_a_missing_directory_is_permanent(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(ftp_server, remote / "missing")
    try:
        with pytest.raises(PermanentTargetError, match="refused"):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()
    assert os.listdir(remote) == []


async def test_a_closed_port_is_transient(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(ftp_server, remote, port=free_port())
    with pytest.raises(TransientTargetError):
        await send(adapter, tmp_path, b"x")
    await adapter.close()


async def test_a_redo_replaces_what_a_killed_process_left(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(ftp_server, remote)
    try:
        await assert_a_redo_replaces_a_dead_attempt(adapter, remote, tmp_path)
    finally:
        await adapter.close()

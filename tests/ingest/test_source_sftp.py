"""The SFTP source against the harness OpenSSH server: listing rules, byte-exact fetches, refusals, failures."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone, TransientSourceError
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.sftp import SftpSource
from auxip.ingest.sources.throttle import UNLIMITED, Throttle
from auxip_testing.process import free_port
from auxip_testing.sftp import SftpServer

pytestmark = pytest.mark.integration

AUX = "S1A_AUX_CAL_V20190228T092500_G20190227T095512.SAFE"
EOF_NAME = "S1A_OPER_AUX_POEORB_OPOD_20240101T001234_V20231231T225942_20240102T005942.EOF"
HOUR_AGO = time.time() - 3600


@pytest.fixture
def remote(sftp_server: SftpServer, server_folder: Callable[..., Path]) -> Path:
    return server_folder(sftp_server.root)


def credentials(server: SftpServer, **override: str) -> Credentials:
    values = {
        "username": server.username,
        "private_key": str(server.private_key),
        "known_hosts": str(server.known_hosts),
    }
    return Credentials(**{**values, **override})


def source(
    server: SftpServer,
    folder: Path,
    creds: Credentials | None = None,
    *,
    throttle: Throttle = UNLIMITED,
    **settings: Any,
) -> SftpSource:
    url = f"sftp://{server.host}:{settings.pop('port', server.port)}{folder}"
    values: dict[str, Any] = {"name": "sftp-test", "url": url, "settle_seconds": 60, **settings}
    return SftpSource(SourceSettings(**values), creds or credentials(server), throttle)


def write(path: Path, data: bytes, mtime: float | None = HOUR_AGO) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return data


def safe_product(root: Path) -> Path:
    folder = root / AUX
    write(folder / "manifest.safe", b"<manifest/>")
    write(folder / "data" / "s1a-aux-cal.xml", os.urandom(70_000))
    for path in (folder / "data", folder):
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


async def listed(src: SftpSource) -> dict[str, RemoteFile]:
    return {entry.name: entry async for entry in src.list()}


async def test_lists_and_fetches_file_and_safe_folder(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    payload = write(remote / EOF_NAME, os.urandom(3 * 1024 * 1024 + 5))
    folder = safe_product(remote)
    for skipped in ("upload.EOF.part", "upload.tmp", "upload.filepart", "x~", ".hidden"):
        write(remote / skipped, b"partial")
    write(remote / "not_a_product" / "inside.EOF", b"ignored")
    write(remote / "S1A_FRESH.EOF", b"still settling", mtime=None)
    src = source(sftp_server, remote)
    try:
        entries = await listed(src)
        assert sorted(entries) == sorted([EOF_NAME, AUX])
        plain, safe = entries[EOF_NAME], entries[AUX]
        assert (plain.path, plain.size, plain.is_dir, plain.version) == (
            EOF_NAME,
            len(payload),
            False,
            f"{len(payload)}:{int(HOUR_AGO) * 1_000_000_000}",
        )
        assert (safe.size, safe.is_dir) == (len(b"<manifest/>") + 70_000, True)

        assert await src.fetch(plain, tmp_path / "out.EOF") == len(payload)
        assert (tmp_path / "out.EOF").read_bytes() == payload
        assert await src.fetch(safe, tmp_path / "staged" / AUX) == safe.size
        assert tree(tmp_path / "staged" / AUX) == tree(folder)
    finally:
        await src.close()


async def test_settle_delay_and_concurrent_fetches_on_one_connection(
    sftp_server: SftpServer, remote: Path, tmp_path: Path
) -> None:
    payloads = {f"S1A_AUX_{n}.EOF": write(remote / f"S1A_AUX_{n}.EOF", os.urandom(600_000), None) for n in range(4)}
    src = source(sftp_server, remote, settle_seconds=0, concurrency=4)
    try:
        assert await listed(source(sftp_server, remote)) == {}  # just written: not settled under 60 s
        entries = await listed(src)
        sizes = await asyncio.gather(*(src.fetch(entries[name], tmp_path / name) for name in payloads))
        assert sizes == [600_000] * 4
        assert {name: (tmp_path / name).read_bytes() for name in payloads} == payloads

        # A dropped connection is replaced on the next call.
        assert src._connection is not None
        src._connection.close()
        await src._connection.wait_closed()
        assert sorted(await listed(src)) == sorted(payloads)
    finally:
        await src.close()


async def test_vanished_and_truncated_files_are_gone(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    write(remote / "S1A_GONE.EOF", os.urandom(10_000))
    write(remote / "S1A_SHORT.EOF", os.urandom(200_000))
    src = source(sftp_server, remote)
    try:
        entries = await listed(src)
        (remote / "S1A_GONE.EOF").unlink()
        with pytest.raises(RemoteFileGone, match="vanished"):
            await src.fetch(entries["S1A_GONE.EOF"], tmp_path / "gone")
        os.truncate(remote / "S1A_SHORT.EOF", 50_000)
        with pytest.raises(RemoteFileGone, match="50000 bytes transferred but 200000 listed"):
            await src.fetch(entries["S1A_SHORT.EOF"], tmp_path / "short")
        assert list(tmp_path.iterdir()) == []
    finally:
        await src.close()


async def test_unknown_host_key_is_refused(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sftp_server.host}]:{sftp_server.port} {' '.join(impostor)}\n")
    src = source(sftp_server, remote, credentials(sftp_server, known_hosts=str(known_hosts)))
    with pytest.raises(PermanentSourceError, match="host key not trusted"):
        await listed(src)


async def test_unknown_user_is_refused(sftp_server: SftpServer, remote: Path) -> None:
    src = source(sftp_server, remote, credentials(sftp_server, username="nosuchuser"))
    with pytest.raises(PermanentSourceError, match="authentication refused for user 'nosuchuser'"):
        await listed(src)


async def test_closed_port_is_transient(sftp_server: SftpServer, remote: Path) -> None:
    src = source(sftp_server, remote, port=free_port())
    with pytest.raises(TransientSourceError, match="connecting"):
        await listed(src)


async def test_bandwidth_limit_is_applied(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    payload = write(remote / EOF_NAME, os.urandom(2 * 1024 * 1024))
    rate = 1024 * 1024
    src = source(sftp_server, remote, throttle=Throttle(rate), bandwidth_limit=rate)
    try:
        entry = (await listed(src))[EOF_NAME]
        started = time.monotonic()
        assert await src.fetch(entry, tmp_path / "out") == len(payload)
        assert time.monotonic() - started >= 1.5  # 2 s of budget less the quarter-second burst
        assert (tmp_path / "out").read_bytes() == payload
    finally:
        await src.close()

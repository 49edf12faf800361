"""The FTP and FTPS source against the harness vsftpd servers: listing, byte-exact fetches, TLS and login refusals."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone, TransientSourceError
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.ftp import FtpSource
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import UNLIMITED, Throttle
from auxip_testing.ftp import FtpServer
from auxip_testing.process import free_port

pytestmark = pytest.mark.integration

AUX = "S1B_AUX_INS_V20160422T000000_G20211027T134314.SAFE"
EOF_NAME = "S1A_OPER_AUX_RESORB_OPOD_20240101T001234_V20231231T210000_20240101T010000.EOF"
HOUR_AGO = time.time() - 3600


@pytest.fixture
def remote(ftp_server: FtpServer, server_folder: Callable[..., Path]) -> Path:
    return server_folder(ftp_server.root)


@pytest.fixture
def tls_remote(ftps_server: FtpServer, server_folder: Callable[..., Path]) -> Path:
    return server_folder(ftps_server.root)


def source(
    server: FtpServer,
    folder: Path,
    *,
    password: str | None = None,
    throttle: Throttle = UNLIMITED,
    scheme: str | None = None,
    **settings: Any,
) -> FtpSource:
    scheme = scheme or ("ftps" if server.tls else "ftp")
    url = f"{scheme}://{server.host}:{settings.pop('port', server.port)}/{folder.relative_to(server.root)}"
    values: dict[str, Any] = {"name": "ftp-test", "url": url, "settle_seconds": 60, **settings}
    if server.ca_file is not None:
        values.setdefault("ca_file", str(server.ca_file))
    creds = Credentials(username=server.username, password=password or server.password)
    return FtpSource(SourceSettings(**values), creds, throttle)


def write(path: Path, data: bytes, mtime: float | None = HOUR_AGO) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return data


def safe_product(root: Path) -> Path:
    folder = root / AUX
    write(folder / "manifest.safe", b"<manifest/>")
    write(folder / "data" / "s1b-aux-ins.xml", os.urandom(90_000))
    for path in (folder / "data", folder):
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


async def listed(src: FtpSource) -> dict[str, RemoteFile]:
    return {entry.name: entry async for entry in src.list()}


async def check_lists_and_fetches(src: FtpSource, remote: Path, tmp_path: Path) -> None:
    payload = write(remote / EOF_NAME, os.urandom(3 * 1024 * 1024 + 11))
    folder = safe_product(remote)
    for skipped in ("upload.EOF.part", "upload.tmp", "upload.filepart", "x~"):
        write(remote / skipped, b"partial")
    write(remote / "not_a_product" / "inside.EOF", b"ignored")
    try:
        entries = await listed(src)
        assert sorted(entries) == sorted([EOF_NAME, AUX])
        plain, safe = entries[EOF_NAME], entries[AUX]
        assert (plain.path, plain.size, plain.is_dir) == (EOF_NAME, len(payload), False)
        assert (safe.size, safe.is_dir) == (len(b"<manifest/>") + 90_000, True)
        assert (await listed(src))[AUX].version == safe.version  # stable between polls

        assert await src.fetch(plain, tmp_path / "out.EOF") == len(payload)
        assert (tmp_path / "out.EOF").read_bytes() == payload
        assert await src.fetch(safe, tmp_path / "staged" / AUX) == safe.size
        assert tree(tmp_path / "staged" / AUX) == tree(folder)
    finally:
        await src.close()


async def test_ftp_lists_and_fetches_file_and_safe_folder(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    await check_lists_and_fetches(source(ftp_server, remote), remote, tmp_path)


async def test_ftps_with_the_ca_lists_and_fetches(ftps_server: FtpServer, tls_remote: Path, tmp_path: Path) -> None:
    await check_lists_and_fetches(source(ftps_server, tls_remote), tls_remote, tmp_path)


async def test_ftps_certificate_is_verified(ftps_server: FtpServer, tls_remote: Path) -> None:
    write(tls_remote / EOF_NAME, b"eof")
    with pytest.raises(PermanentSourceError, match="TLS certificate verification failed: self-signed certificate"):
        await listed(source(ftps_server, tls_remote, ca_file=None))
    # Verification off (an explicit, audited setting) accepts the same server.
    assert list(await listed(source(ftps_server, tls_remote, ca_file=None, verify_tls=False))) == [EOF_NAME]


async def test_plain_ftp_to_a_tls_only_server_is_refused(ftps_server: FtpServer, tls_remote: Path) -> None:
    with pytest.raises(PermanentSourceError, match="must use encryption"):
        await listed(source(ftps_server, tls_remote, scheme="ftp"))


async def test_wrong_password_is_refused(ftp_server: FtpServer, remote: Path) -> None:
    with pytest.raises(PermanentSourceError, match="login refused for user 'auxipftp': 530"):
        await listed(source(ftp_server, remote, password=ftp_server.password + "-wrong"))


async def test_closed_port_is_transient(ftp_server: FtpServer, remote: Path) -> None:
    with pytest.raises(TransientSourceError, match="listing"):
        await listed(source(ftp_server, remote, port=free_port()))


async def test_exact_time_settles_a_fresh_file_and_vanished_ones_are_gone(
    ftp_server: FtpServer, remote: Path, tmp_path: Path
) -> None:
    write(remote / "S1A_FRESH.EOF", b"fresh", mtime=None)
    write(remote / "S1A_GONE.EOF", os.urandom(10_000))
    write(remote / "S1A_SHORT.EOF", os.urandom(300_000))
    src = source(ftp_server, remote, settle_seconds=3, concurrency=2)
    try:
        entries = await listed(src)
        assert sorted(entries) == ["S1A_GONE.EOF", "S1A_SHORT.EOF"]
        # LIST shows minutes only; MDTM's seconds let the file settle after 3 s, not at the end of the minute.
        await asyncio.sleep(3.2)
        assert "S1A_FRESH.EOF" in await listed(src)

        (remote / "S1A_GONE.EOF").unlink()
        with pytest.raises(RemoteFileGone, match="550"):
            await src.fetch(entries["S1A_GONE.EOF"], tmp_path / "gone")
        os.truncate(remote / "S1A_SHORT.EOF", 1000)
        with pytest.raises(RemoteFileGone, match="1000 bytes transferred but 300000 listed"):
            await src.fetch(entries["S1A_SHORT.EOF"], tmp_path / "short")
        assert list(tmp_path.iterdir()) == []
    finally:
        await src.close()


async def test_concurrent_fetches_share_a_bounded_pool(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    payloads = {f"S1A_AUX_{n}.EOF": write(remote / f"S1A_AUX_{n}.EOF", os.urandom(400_000)) for n in range(5)}
    src = source(ftp_server, remote, concurrency=2)
    try:
        entries = await listed(src)
        sizes = await asyncio.gather(*(src.fetch(entries[name], tmp_path / name) for name in payloads))
        assert sizes == [400_000] * 5
        assert {name: (tmp_path / name).read_bytes() for name in payloads} == payloads
        assert len(src._idle) == 2  # never more connections than `concurrency`, kept for reuse
    finally:
        await src.close()


async def test_bandwidth_limit_is_applied(ftp_server: FtpServer, remote: Path, tmp_path: Path) -> None:
    payload = write(remote / EOF_NAME, os.urandom(2 * 1024 * 1024))
    rate = 1024 * 1024
    src = source(ftp_server, remote, throttle=Throttle(rate), bandwidth_limit=rate)
    try:
        entry = (await listed(src))[EOF_NAME]
        started = time.monotonic()
        assert await src.fetch(entry, tmp_path / "out") == len(payload)
        assert time.monotonic() - started >= 1.5  # 2 s of budget less the quarter-second burst
        assert (tmp_path / "out").read_bytes() == payload
    finally:
        await src.close()

"""The SFTP target against the harness OpenSSH server: byte-exact delivery, atomic replace, refusals, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from auxip.ingest.sources.credentials import Credentials
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import PermanentTargetError, Target, TransientTargetError
from auxip.routing.targets.sftp import SftpTarget
from auxip_testing.delivery import assert_a_redo_replaces_a_dead_attempt
from auxip_testing.process import free_port
from auxip_testing.sftp import SftpServer

pytestmark = pytest.mark.integration

EOF_NAME = "S1A_OPER_AUX_POEORB_OPOD_20240101T001234_V20231231T225942_20240102T005942.EOF"


@pytest.fixture
def remote(sftp_server: SftpServer) -> Iterator[Path]:
    """A directory of its own on the shared server, so tests neither see nor delete each other's files."""
    folder = sftp_server.root / f"outbox-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def credentials(server: SftpServer, **override: str) -> Credentials:
    values = {
        "username": server.username,
        "private_key": str(server.private_key),
        "known_hosts": str(server.known_hosts),
    }
    return Credentials(**{**values, **override})


def target(server: SftpServer, folder: Path, creds: Credentials | None = None, **settings: Any) -> SftpTarget:
    url = f"sftp://{server.host}:{settings.pop('port', server.port)}{folder}"
    return SftpTarget(TargetSettings(name="sftp-out", url=url, **settings), creds or credentials(server))


def payload(tmp_path: Path, data: bytes, name: str = "staged") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.md5(data).hexdigest()  # noqa: S324 - the transfer checksum, not security


async def test_delivers_the_bytes_under_the_final_name_and_leaves_no_temporary(
    sftp_server: SftpServer, remote: Path, tmp_path: Path
) -> None:
    data = os.urandom(700_001)
    local, md5 = payload(tmp_path, data)
    adapter = target(sftp_server, remote)
    try:
        assert isinstance(adapter, Target)
        delivered = await adapter.deliver(local, EOF_NAME, md5)
    finally:
        await adapter.close()
    assert (remote / EOF_NAME).read_bytes() == data
    assert sorted(os.listdir(remote)) == [EOF_NAME]
    assert (delivered.location, delivered.size, delivered.verified) == (str(remote / EOF_NAME), 700_001, "size")


async def test_a_large_file_is_streamed(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    data = os.urandom((16 << 20) + 12_345)  # above SMALL_FILE: the streaming path
    local, md5 = payload(tmp_path, data)
    adapter = target(sftp_server, remote)
    try:
        delivered = await adapter.deliver(local, EOF_NAME, md5)
    finally:
        await adapter.close()
    assert delivered.size == len(data)
    assert (remote / EOF_NAME).read_bytes() == data
    assert os.listdir(remote) == [EOF_NAME]


async def test_redelivery_replaces_and_leaves_other_files_alone(
    sftp_server: SftpServer, remote: Path, tmp_path: Path
) -> None:
    (remote / "unrelated.txt").write_bytes(b"keep me")
    (remote / EOF_NAME).write_bytes(b"an older copy, longer than the new one" * 100)
    adapter = target(sftp_server, remote)
    try:
        local, md5 = payload(tmp_path, b"second version")
        await adapter.deliver(local, EOF_NAME, md5)
        assert await adapter.exists(EOF_NAME) == len(b"second version")
        assert await adapter.exists("absent.EOF") is None
    finally:
        await adapter.close()
    assert (remote / EOF_NAME).read_bytes() == b"second version"
    assert (remote / "unrelated.txt").read_bytes() == b"keep me"
    assert sorted(os.listdir(remote)) == [EOF_NAME, "unrelated.txt"]


async def test_checksum_is_not_verifiable_over_openssh_so_only_the_size_is(
    sftp_server: SftpServer, remote: Path, tmp_path: Path
) -> None:
    local, _ = payload(tmp_path, b"bytes whose md5 is not zero")
    adapter = target(sftp_server, remote)
    try:
        delivered = await adapter.deliver(local, EOF_NAME, "0" * 32)
    finally:
        await adapter.close()
    assert delivered.verified == "size"
    assert (remote / EOF_NAME).read_bytes() == b"bytes whose md5 is not zero"


async def test_twenty_concurrent_deliveries_share_one_connection(
    sftp_server: SftpServer, remote: Path, tmp_path: Path
) -> None:
    files = {f"S1A_AUX_PP1_V20240101T0000{index:02d}_G20240101T000000.EOF": os.urandom(1 << 20) for index in range(20)}
    staged = {name: payload(tmp_path, data, name) for name, data in files.items()}
    adapter = target(sftp_server, remote, concurrency=8)
    try:
        results = await asyncio.gather(*(adapter.deliver(path, name, md5) for name, (path, md5) in staged.items()))
    finally:
        await adapter.close()
    assert {Path(result.location).name for result in results} == set(files)
    assert sorted(os.listdir(remote)) == sorted(files)
    for name, data in files.items():
        assert (remote / name).read_bytes() == data, name


async def test_an_unauthorised_key_is_permanent(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    adapter = target(sftp_server, remote, credentials(sftp_server, private_key=str(other)))
    local, md5 = payload(tmp_path, b"x")
    with pytest.raises(PermanentTargetError, match="authentication refused"):
        await adapter.deliver(local, EOF_NAME, md5)
    await adapter.close()
    assert os.listdir(remote) == []


async def test_an_unknown_host_key_is_permanent(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sftp_server.host}]:{sftp_server.port} {stranger[0]} {stranger[1]}\n")
    adapter = target(sftp_server, remote, credentials(sftp_server, known_hosts=str(known_hosts)))
    local, md5 = payload(tmp_path, b"x")
    with pytest.raises(PermanentTargetError, match="host key"):
        await adapter.deliver(local, EOF_NAME, md5)
    await adapter.close()


async def test_a_missing_directory_is_permanent(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(sftp_server, remote / "missing")
    local, md5 = payload(tmp_path, b"x")
    try:
        with pytest.raises(PermanentTargetError, match="does not exist"):
            await adapter.deliver(local, EOF_NAME, md5)
    finally:
        await adapter.close()


async def test_a_closed_port_is_transient(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(sftp_server, remote, port=free_port())
    local, md5 = payload(tmp_path, b"x")
    with pytest.raises(TransientTargetError):
        await adapter.deliver(local, EOF_NAME, md5)
    await adapter.close()


async def test_a_name_with_a_path_is_refused(sftp_server: SftpServer, remote: Path, tmp_path: Path) -> None:
    adapter = target(sftp_server, remote)
    local, md5 = payload(tmp_path, b"x")
    with pytest.raises(PermanentTargetError, match="plain, visible file name"):
        await adapter.deliver(local, "../escape.EOF", md5)
    await adapter.close()
    assert not (remote.parent / "escape.EOF").exists()


async def test_a_redo_replaces_what_a_killed_process_left(
    sftp_server: SftpServer, remote: Path, tmp_path: Path
) -> None:
    adapter = target(sftp_server, remote)
    try:
        await assert_a_redo_replaces_a_dead_attempt(adapter, remote, tmp_path)
    finally:
        await adapter.close()

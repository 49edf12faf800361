"""The local-directory and hosted-application inbox targets on the real filesystem, and the scheme factory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.credentials import NONE
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import Delivered, PermanentTargetError, Target, VerificationError
from auxip.routing.targets.factory import open_target
from auxip.routing.targets.ftp import FtpTarget
from auxip.routing.targets.http import HttpTarget
from auxip.routing.targets.inbox import InboxTarget
from auxip.routing.targets.local import DirectoryTarget, LocalTarget, temporary_name
from auxip.routing.targets.s3 import S3Target
from auxip.routing.targets.sftp import SftpTarget
from auxip_testing.delivery import assert_a_redo_replaces_a_dead_attempt

EOF_NAME = "S1A_OPER_AUX_POEORB_OPOD_20240101T001234_V20231231T225942_20240102T005942.EOF"


def local_target(directory: Path, **settings: Any) -> LocalTarget:
    return LocalTarget(TargetSettings(name="disk", url=f"file://{directory}", **settings), NONE)


async def send(
    adapter: DirectoryTarget, staging: Path, data: bytes, name: str = EOF_NAME, md5: str | None = None
) -> Delivered:
    staging.mkdir(exist_ok=True)
    local = staging / f"staged-{uuid.uuid4().hex[:8]}"
    local.write_bytes(data)
    return await adapter.deliver(local, name, md5 or hashlib.md5(data).hexdigest())  # noqa: S324 - transfer checksum


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    folder.mkdir()
    return folder


async def test_delivers_verifies_and_replaces(outbox: Path, tmp_path: Path) -> None:
    (outbox / "unrelated.txt").write_bytes(b"keep me")
    adapter = local_target(outbox)
    assert isinstance(adapter, Target)
    data = os.urandom(3_000_001)
    delivered = await send(adapter, tmp_path / "staging", data)
    assert delivered == Delivered(location=str(outbox / EOF_NAME), size=len(data), verified="size+md5")
    assert (outbox / EOF_NAME).read_bytes() == data
    await send(adapter, tmp_path / "staging", b"second")
    assert (outbox / EOF_NAME).read_bytes() == b"second"
    assert await adapter.exists(EOF_NAME) == len(b"second")
    assert await adapter.exists("absent.EOF") is None
    assert sorted(os.listdir(outbox)) == [EOF_NAME, "unrelated.txt"]
    assert (outbox / "unrelated.txt").read_bytes() == b"keep me"


async def test_a_checksum_mismatch_leaves_neither_temporary_nor_final(outbox: Path, tmp_path: Path) -> None:
    adapter = local_target(outbox)
    with pytest.raises(VerificationError, match=f"expected {'0' * 32}") as raised:
        await send(adapter, tmp_path / "staging", b"some bytes", md5="0" * 32)
    assert hashlib.md5(b"some bytes").hexdigest() in str(raised.value)  # noqa: S324 - both values are reported
    assert os.listdir(outbox) == []


async def test_a_checksum_mismatch_keeps_the_previous_delivery(outbox: Path, tmp_path: Path) -> None:
    (outbox / EOF_NAME).write_bytes(b"the good old copy")
    with pytest.raises(VerificationError):
        await send(local_target(outbox), tmp_path / "staging", b"new bytes", md5="0" * 32)
    assert os.listdir(outbox) == [EOF_NAME]
    assert (outbox / EOF_NAME).read_bytes() == b"the good old copy"


async def test_without_checksum_verification_only_the_size_is_checked(outbox: Path, tmp_path: Path) -> None:
    delivered = await send(local_target(outbox, verify_checksum=False), tmp_path / "staging", b"x", md5="0" * 32)
    assert delivered.verified == "size"


async def test_parallel_deliveries(outbox: Path, tmp_path: Path) -> None:
    files = {f"S1A_AUX_PP1_V20240101T0000{index:02d}_G20240101T000000.EOF": os.urandom(1 << 20) for index in range(20)}
    adapter = local_target(outbox, concurrency=8)
    await asyncio.gather(*(send(adapter, tmp_path / "staging", data, name) for name, data in files.items()))
    assert sorted(os.listdir(outbox)) == sorted(files)
    assert all((outbox / name).read_bytes() == data for name, data in files.items())


async def test_a_missing_directory_or_local_file_is_permanent(outbox: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentTargetError, match="does not exist"):
        await send(local_target(outbox / "missing"), tmp_path / "staging", b"x")
    with pytest.raises(PermanentTargetError, match="cannot read the file to deliver"):
        await local_target(outbox).deliver(tmp_path / "never-staged", EOF_NAME, "0" * 32)
    assert os.listdir(outbox) == []


@pytest.mark.parametrize("name", ["../escape.EOF", "sub/name.EOF", ".hidden", ""])
async def test_names_that_are_not_plain_are_refused(outbox: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(PermanentTargetError, match="plain, visible file name"):
        await send(local_target(outbox), tmp_path / "staging", b"x", name=name)
    assert not (outbox.parent / "escape.EOF").exists()


def test_temporary_names_are_hidden_partial_and_the_same_for_every_attempt_at_a_file() -> None:
    md5, other = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    assert temporary_name(EOF_NAME, md5) == temporary_name(EOF_NAME, md5) == f".{EOF_NAME}.0123456789ab.part"
    assert temporary_name(EOF_NAME, other) != temporary_name(EOF_NAME, md5)


async def test_a_redo_replaces_what_a_killed_process_left(outbox: Path, tmp_path: Path) -> None:
    await assert_a_redo_replaces_a_dead_attempt(local_target(outbox), outbox, tmp_path)


async def test_inbox_delivers_into_the_applications_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "apps" / "orbit-tool" / "inbox"
    inbox.mkdir(parents=True)
    settings = TargetSettings(name="orbit-tool-inbox", url="inbox://orbit-tool")
    adapter = open_target(settings, inbox_root=tmp_path / "apps")
    assert isinstance(adapter, InboxTarget)
    delivered = await send(adapter, tmp_path / "staging", b"orbit")
    assert delivered.location == str(inbox / EOF_NAME)
    assert os.listdir(inbox) == [EOF_NAME]
    with pytest.raises(VerificationError):
        await send(adapter, tmp_path / "staging", b"other", md5="0" * 32)
    assert os.listdir(inbox) == [EOF_NAME]
    assert (inbox / EOF_NAME).read_bytes() == b"orbit"


async def test_inbox_of_an_undeployed_application_is_permanent(tmp_path: Path) -> None:
    adapter = open_target(TargetSettings(name="gone", url="inbox://gone-app"), inbox_root=tmp_path)
    with pytest.raises(PermanentTargetError, match="does not exist"):
        await send(adapter, tmp_path / "staging", b"x")
    with pytest.raises(PermanentTargetError, match="no inbox root"):
        open_target(TargetSettings(name="gone", url="inbox://gone-app"))
    with pytest.raises(PermanentTargetError, match="not an inbox"):
        open_target(TargetSettings(name="bad", url="inbox://app/sub"), inbox_root=tmp_path)


@pytest.mark.parametrize(
    ("url", "adapter"),
    [
        ("file:///srv/outbox", LocalTarget),
        ("sftp://host.example/dir", SftpTarget),
        ("ftp://host.example/dir", FtpTarget),
        ("ftps://host.example/dir", FtpTarget),
        ("s3://bucket/prefix", S3Target),
        ("https://host.example/dav/", HttpTarget),
    ],
)
async def test_the_factory_maps_schemes_to_adapters(url: str, adapter: type) -> None:
    target = open_target(TargetSettings(name="t", url=url))
    try:
        assert type(target) is adapter
        assert target.name == "t"
    finally:
        await target.close()

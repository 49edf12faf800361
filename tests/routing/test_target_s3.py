"""The S3 target against the harness S3Proxy: byte-exact objects, Content-MD5 and ETag checks, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.credentials import Credentials
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import (
    Delivered,
    PermanentTargetError,
    Target,
    TransientTargetError,
    VerificationError,
)
from auxip.routing.targets.s3 import S3Target
from auxip_testing.process import free_port
from auxip_testing.s3 import S3Server

pytestmark = pytest.mark.integration

EOF_NAME = "S1A_OPER_AUX_PREORB_OPOD_20240101T001234_V20240101T000000_20240103T000000.EOF"


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[tuple[Any, str]]:
    client = s3_server.client()
    name = S3Server.fresh_bucket_name("routing")
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()


def target(server: S3Server, url: str, *, secret: str | None = None, **settings: Any) -> S3Target:
    values: dict[str, Any] = {"name": "s3-out", "url": url, "endpoint_url": server.endpoint_url,
                              "region": server.region, **settings}  # fmt: skip
    credentials = Credentials(access_key=server.access_key, secret_key=secret or server.secret_key)
    return S3Target(TargetSettings(**values), credentials)


async def send(
    adapter: S3Target, tmp_path: Path, data: bytes, name: str = EOF_NAME, md5: str | None = None
) -> Delivered:
    local = tmp_path / f"staged-{uuid.uuid4().hex[:8]}"
    local.write_bytes(data)
    return await adapter.deliver(local, name, md5 or hashlib.md5(data).hexdigest())  # noqa: S324 - transfer checksum


def keys(bucket: tuple[Any, str]) -> list[str]:
    client, name = bucket
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))


def body(bucket: tuple[Any, str], key: str) -> bytes:
    client, name = bucket
    data: bytes = client.get_object(Bucket=name, Key=key)["Body"].read()
    return data


async def test_delivers_under_the_prefix_replaces_and_leaves_other_keys(
    s3_server: S3Server, bucket: tuple[Any, str], tmp_path: Path
) -> None:
    client, name = bucket
    client.put_object(Bucket=name, Key="outgoing/unrelated.txt", Body=b"keep me")
    first, second = os.urandom(2_000_003), os.urandom(10)
    adapter = target(s3_server, f"s3://{name}/outgoing")
    try:
        assert isinstance(adapter, Target)
        delivered = await send(adapter, tmp_path, first)
        assert (delivered.location, delivered.size, delivered.verified) == (
            f"s3://{name}/outgoing/{EOF_NAME}", len(first), "size+etag")  # fmt: skip
        assert body(bucket, f"outgoing/{EOF_NAME}") == first
        await send(adapter, tmp_path, second)
        assert await adapter.exists(EOF_NAME) == len(second)
        assert await adapter.exists("absent.EOF") is None
    finally:
        await adapter.close()
    assert body(bucket, f"outgoing/{EOF_NAME}") == second
    assert keys(bucket) == [f"outgoing/{EOF_NAME}", "outgoing/unrelated.txt"]


async def test_bytes_not_matching_the_md5_are_refused_and_not_stored(
    s3_server: S3Server, bucket: tuple[Any, str], tmp_path: Path
) -> None:
    adapter = target(s3_server, f"s3://{bucket[1]}")
    try:
        with pytest.raises(VerificationError, match="BadDigest") as raised:
            await send(adapter, tmp_path, b"bytes whose md5 is not zero", md5="0" * 32)
        actual = hashlib.md5(b"bytes whose md5 is not zero").hexdigest()  # noqa: S324 - transfer checksum
        assert f"expected MD5 {'0' * 32}, the local file's is {actual}" in str(raised.value)
        assert await adapter.exists(EOF_NAME) is None
    finally:
        await adapter.close()
    assert keys(bucket) == []


async def test_without_checksum_verification_only_the_size_is_checked(
    s3_server: S3Server, bucket: tuple[Any, str], tmp_path: Path
) -> None:
    adapter = target(s3_server, f"s3://{bucket[1]}", verify_checksum=False)
    try:
        delivered = await send(adapter, tmp_path, b"payload", md5="0" * 32)
    finally:
        await adapter.close()
    assert delivered.verified == "size"
    assert body(bucket, EOF_NAME) == b"payload"


async def test_concurrent_deliveries(s3_server: S3Server, bucket: tuple[Any, str], tmp_path: Path) -> None:
    files = {f"S1A_AUX_PP1_V20240101T0000{index:02d}_G20240101T000000.EOF": os.urandom(200_000) for index in range(10)}
    adapter = target(s3_server, f"s3://{bucket[1]}/a/b", concurrency=4)
    try:
        await asyncio.gather(*(send(adapter, tmp_path, data, name) for name, data in files.items()))
    finally:
        await adapter.close()
    assert keys(bucket) == sorted(f"a/b/{name}" for name in files)
    assert all(body(bucket, f"a/b/{name}") == data for name, data in files.items())


async def test_a_wrong_secret_is_permanent(s3_server: S3Server, bucket: tuple[Any, str], tmp_path: Path) -> None:
    adapter = target(s3_server, f"s3://{bucket[1]}", secret=secrets.token_urlsafe(30))
    try:
        with pytest.raises(PermanentTargetError, match="403"):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()
    assert keys(bucket) == []


async def test_a_missing_bucket_is_permanent(s3_server: S3Server, tmp_path: Path) -> None:
    adapter = target(s3_server, f"s3://{S3Server.fresh_bucket_name('absent')}")
    try:
        with pytest.raises(PermanentTargetError, match="bucket does not exist"):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()


async def test_a_closed_port_is_transient(s3_server: S3Server, bucket: tuple[Any, str], tmp_path: Path) -> None:
    adapter = target(s3_server, f"s3://{bucket[1]}", endpoint_url=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(TransientTargetError):
            await send(adapter, tmp_path, b"x")
    finally:
        await adapter.close()

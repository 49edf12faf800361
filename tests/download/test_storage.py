"""The storage backends directly: MD5 while writing, stat, ranged reads, delete, key safety, open_storage."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auxip.storage import ByteRange, InvalidKeyError, LocalStorage, ObjectNotFoundError, Storage
from auxip_testing.s3 import S3Server

from .conftest import s3_storage

pytestmark = pytest.mark.asyncio


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_put_file_stat_read_delete(storage: Storage, content: bytes, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(content)

    info = await storage.put_file("aux/a.zip", source)

    assert (info.size, info.md5) == (len(content), md5(content))
    stat = await storage.stat("aux/a.zip")
    assert stat.size == len(content)
    assert await storage.exists("aux/a.zip")
    assert await collect(storage.read("aux/a.zip")) == content
    assert await collect(storage.read("aux/a.zip", ByteRange(1000, 3 << 20))) == content[1000 : 1000 + (3 << 20)]
    chunks = [chunk async for chunk in storage.read("aux/a.zip", chunk_size=1 << 20)]
    assert max(len(chunk) for chunk in chunks) <= 1 << 20
    await storage.delete("aux/a.zip")
    assert not await storage.exists("aux/a.zip")
    await storage.delete("aux/a.zip")  # idempotent, like S3
    with pytest.raises(ObjectNotFoundError):
        await storage.stat("aux/a.zip")
    with pytest.raises(ObjectNotFoundError):
        await collect(storage.read("aux/a.zip"))


async def test_small_put_stream_and_empty_object(storage: Storage) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    info = await storage.put_stream("x/small", chunks())
    assert (info.size, info.md5) == (11, md5(b"hello world"))
    assert await collect(storage.read("x/small", ByteRange(6, 5))) == b"world"

    async def nothing() -> AsyncIterator[bytes]:
        return
        yield

    empty = await storage.put_stream("x/empty", nothing())
    assert (empty.size, empty.md5) == (0, md5(b""))
    assert await collect(storage.read("x/empty")) == b""


@pytest.mark.integration
async def test_s3_multipart_upload_and_single_part_etag(s3_server: S3Server, content: bytes) -> None:
    storage = s3_storage(s3_server)
    await storage.put_stream("big", _one(content))  # 11 MiB > the fixture's 5 MiB threshold: 3 parts
    big = await storage.stat("big")
    assert big.size == len(content)
    assert big.md5 is None  # a multipart ETag is not the object's MD5
    await storage.put_stream("small", _one(b"abc"))
    assert (await storage.stat("small")).md5 == md5(b"abc")
    await storage.close()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize(
    "key",
    [
        "../outside",
        "a/../../outside",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\\..\\b",
        "",
        "a/\x00b",
        "a/.tmp-123",
        "a/b/",
    ],
)
async def test_local_rejects_path_traversal_keys(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    storage = LocalStorage(root)
    with pytest.raises(InvalidKeyError):
        await storage.put_stream(key, _one(b"x"))
    with pytest.raises(InvalidKeyError):
        await storage.stat(key)
    with pytest.raises(InvalidKeyError):
        storage.local_path(key)
    assert list(tmp_path.iterdir()) == [root]
    assert list(root.iterdir()) == []


async def test_local_rejects_symlink_escape(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "link").symlink_to(outside, target_is_directory=True)
    storage = LocalStorage(root)
    with pytest.raises(InvalidKeyError):
        await collect(storage.read("link/secret"))
    with pytest.raises(InvalidKeyError):
        await storage.put_stream("link/new", _one(b"x"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


async def test_local_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_stream("d/f", _one(b"old"))

    async def failing() -> AsyncIterator[bytes]:
        yield b"new bytes, half written"
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        await storage.put_stream("d/f", failing())
    assert (tmp_path / "d" / "f").read_bytes() == b"old"
    assert os.listdir(tmp_path / "d") == ["f"]
    assert oct((tmp_path / "d" / "f").stat().st_mode & 0o777) == oct(0o644)

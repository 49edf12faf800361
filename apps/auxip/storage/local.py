"""Local directory backend (`file:///srv/auxip/archive`).

Writes are atomic: the bytes go to a temporary file in the target directory (same filesystem, so the rename cannot
turn into a copy), which is fsynced, renamed over the final name, and the directory is fsynced so the rename itself
survives a crash. Readers therefore see the old object or the complete new one, never a torn file.

Blocking file I/O runs in the default thread pool; the download handler bypasses `read` for this backend and sends
`local_path(key)` with sendfile (zero-copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from auxip.storage.base import DEFAULT_CHUNK_SIZE, InvalidKeyError, ObjectInfo, ObjectNotFoundError
from auxip.storage.keys import validate_key
from auxip.storage.ranges import ByteRange

FILE_MODE = 0o644  # mkstemp creates 0600; the archive is read by other processes (sendfile workers, backups)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _AtomicWriter:
    """A temp file next to `target`, hashed while written, renamed over `target` by `commit`."""

    def __init__(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.fchmod(fd, FILE_MODE)
        self.target = target
        self.temp = Path(temp)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.md5.update(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temp, self.target)
        _fsync_dir(self.target.parent)

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


class LocalStorage:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"local storage root {self.root} is not a directory")

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*validate_key(key).split("/"))
        # The key itself cannot climb out (see `keys`), but a symlinked directory inside the root could.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKeyError(key, "resolves outside the storage root (symlink)")
        return path

    def local_path(self, key: str) -> Path:
        return self._path(key)

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        target = self._path(key)

        def copy() -> ObjectInfo:
            with open(path, "rb") as source, _writing(target) as writer:
                while chunk := source.read(DEFAULT_CHUNK_SIZE):
                    writer.write(chunk)
            return ObjectInfo(key, writer.size, writer.md5.hexdigest(), _now())

        return await asyncio.to_thread(copy)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        target = self._path(key)
        writer = await asyncio.to_thread(_AtomicWriter, target)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(writer.write, chunk)
            await asyncio.to_thread(writer.commit)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        return ObjectInfo(key, writer.size, writer.md5.hexdigest(), _now())

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        return ObjectInfo(key, st.st_size, None, datetime.fromtimestamp(st.st_mtime, UTC))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def read(
        self, key: str, byte_range: ByteRange | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        path = self._path(key)
        try:
            file = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        try:
            start, remaining = (0, None) if byte_range is None else (byte_range.start, byte_range.length)
            await asyncio.to_thread(file.seek, start)
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = await asyncio.to_thread(file.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(file.close)

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                _fsync_dir(path.parent)

        await asyncio.to_thread(remove)

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def _writing(target: Path) -> Iterator[_AtomicWriter]:
    writer = _AtomicWriter(target)
    try:
        yield writer
    except BaseException:
        writer.discard()
        raise
    writer.commit()


def _now() -> datetime:
    return datetime.now(UTC)

"""The storage protocol every backend implements, and the errors it raises."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from auxip.storage.ranges import ByteRange

# 1 MiB: large enough that per-chunk overhead (a thread hop, an HTTP write) is negligible, small enough that 32
# parallel downloads hold only a few tens of MiB.
DEFAULT_CHUNK_SIZE = 1 << 20


class StorageError(Exception):
    """A storage operation failed for a reason the caller cannot fix by changing the key."""


class ObjectNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under key {key!r}")
        self.key = key


class InvalidKeyError(StorageError, ValueError):
    """The key could escape the storage root or is not a plain relative path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid storage key {key!r}: {reason}")
        self.key = key


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    # Lower-case hex MD5: always set by `put_*` (computed while writing). `stat` sets it only when the backend knows
    # it without reading the object (S3 single-part ETag); the catalog is the reference for checksums anyway.
    md5: str | None
    last_modified: datetime | None = None


@runtime_checkable
class Storage(Protocol):
    """Put, stat, read (whole or a byte range, as chunks), delete. Keys are relative `a/b/c` paths (see `keys`)."""

    @property
    def url(self) -> str: ...

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store the content of the local file `path` under `key` (replacing any previous object)."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        """Store the concatenated `chunks` under `key`; readers never see a partial object."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Size (and what else is known cheaply) of the object; `ObjectNotFoundError` if absent."""
        ...

    async def exists(self, key: str) -> bool: ...

    def read(
        self, key: str, byte_range: ByteRange | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """The bytes of `byte_range` (whole object if None) as chunks of at most `chunk_size` bytes."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting an absent object is not an error (as in S3)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file holding the object when the backend is a local filesystem (for zero-copy sendfile), else None."""
        ...

    async def close(self) -> None: ...

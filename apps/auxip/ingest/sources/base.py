"""What every source adapter implements: list what is available, fetch one entry to staging.

Adapters only talk to their protocol. Retries, backoff, circuit breaking, deduplication and the persisted discovery
state live in the pipeline, so an adapter raises a classified error and never loops on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One entry a source offers: a file, or a directory product (a `.SAFE` folder) fetched as a tree."""

    #: Path relative to the source root (or object key, or the OData product Id) — what `fetch` is given back.
    path: str
    #: The entry's own name (basename), the candidate product name.
    name: str
    #: Bytes (for a directory: the sum of its files), when the protocol tells; `fetch` results are checked against it.
    size: int | None
    modified: datetime | None
    #: A token that changes when the content changes (ETag, mtime+size, source checksum): part of the dedup key.
    version: str
    #: Checksum the source advertises, e.g. ("MD5", "<hex>"); the fetched bytes are verified against it.
    checksum: tuple[str, str] | None = None
    is_dir: bool = False
    #: When the source made it available, if the source says so (OData PublicationDate); else first seen.
    origin_date: datetime | None = None


class SourceError(Exception):
    """A source operation failed."""


class TransientSourceError(SourceError):
    """Try again later (connection refused, timeout, 5xx, 429); `retry_after` seconds when the server said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSourceError(SourceError):
    """Retrying cannot help (authentication refused, bad configuration, TLS verification failed)."""


class RemoteFileGone(SourceError):
    """The entry disappeared (or changed) at the source between listing and the end of the transfer."""


@runtime_checkable
class Source(Protocol):
    """A configured source. `list` yields complete entries only (no temporary or partial uploads)."""

    name: str

    def list(self) -> AsyncIterator[RemoteFile]: ...

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        """Write the entry's bytes to `destination` (a new file, or a new directory tree when `entry.is_dir`).

        Returns the number of bytes written. Raises `RemoteFileGone` if it vanished or was truncated mid-transfer.
        """
        ...

    async def close(self) -> None: ...


@runtime_checkable
class PostDeliverySource(Protocol):
    """A source that can act on an entry once routing delivered it to every target (`routes[].post_delivery`).

    Both are idempotent: an entry already gone counts as done, so an action redone after a crash succeeds. Which
    source kinds have them is `auxip.ingest.sources.settings.POST_DELIVERY_SCHEMES`, checked at configuration.
    """

    async def remove(self, entry: RemoteFile) -> None:
        """Delete the entry at the source (a `.SAFE` folder with everything in it)."""
        ...

    async def move(self, entry: RemoteFile, folder: str) -> None:
        """Move the entry into `folder`, relative to the source's root and created if missing."""
        ...

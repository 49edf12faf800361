"""What every delivery target implements: upload a file under a temporary name, verify, rename into place.

Adapters only talk to their protocol; retries, the circuit breaker, the dead-letter state and the audit trail live in
the routing engine. Errors are classified like the sources' (`auxip.ingest.sources.base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from auxip.ingest.sources.base import PermanentSourceError, TransientSourceError


class TargetError(Exception):
    """A delivery failed."""


class TransientTargetError(TargetError, TransientSourceError):
    """Try again later (connection refused, timeout, 5xx, 429, disk full at the target)."""


class PermanentTargetError(TargetError, PermanentSourceError):
    """Retrying cannot help without an operator (authentication refused, TLS verification failed, bad path)."""


class VerificationError(TargetError):
    """The target holds other bytes than were sent (size or checksum after upload): retried, then dead-lettered."""


@dataclass(frozen=True, slots=True)
class Delivered:
    #: Where the file now is at the target (path or key), after the rename.
    location: str
    size: int
    #: How the delivery was verified: "size", "size+md5", "size+etag".
    verified: str


@runtime_checkable
class Target(Protocol):
    name: str

    async def deliver(self, local: Path, name: str, md5: str) -> Delivered:
        """Upload `local` as `name`: to a temporary name first, verify size (and checksum where the target can),
        then rename atomically into place, replacing a previous copy of the same name (a redelivery)."""
        ...

    async def exists(self, name: str) -> int | None:
        """Size of `name` at the target, None if absent (lets a restarted delivery detect a finished upload)."""
        ...

    async def close(self) -> None: ...

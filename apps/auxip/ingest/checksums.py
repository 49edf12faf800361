"""Checksums of published files, computed while they are written: one pass, no re-read.

`HashingWriter` sits between `zipfile` and the output file. It is not seekable, so `zipfile` writes in streaming
mode (sizes and CRC in data descriptors after each entry, never going back to patch a header): the bytes that go
through it are exactly, and in order, the bytes of the final file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
DEFAULT_ALGORITHMS = ("MD5", "SHA256")
# Catalog algorithm names (as in the OData Checksum type) to hashlib names.
_HASHLIB_NAMES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512", "SHA3-256": "sha3_256"}


def _hashers(algorithms: Iterable[str]) -> dict[str, hashlib._Hash]:
    hashers = {}
    for algorithm in algorithms:
        if algorithm not in _HASHLIB_NAMES:
            raise ValueError(f"unknown checksum algorithm {algorithm!r} (known: {', '.join(_HASHLIB_NAMES)})")
        # An integrity checksum (the contract's MD5), not a security one: allowed on FIPS hosts too.
        hashers[algorithm] = hashlib.new(_HASHLIB_NAMES[algorithm], usedforsecurity=False)
    return hashers


class HashingWriter:
    """A write-only, non-seekable binary stream that hashes and counts what it passes on to `raw`.

    `raw` (a buffered binary file) stays owned by the caller: `close()` only flushes it.
    """

    def __init__(self, raw: BinaryIO, algorithms: Iterable[str] = DEFAULT_ALGORITHMS) -> None:
        self._raw = raw
        self._hashers = _hashers(algorithms)
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = self._raw.write(data)
        if written != len(data):
            raise OSError(f"short write: {written} of {len(data)} bytes")
        for hasher in self._hashers.values():
            hasher.update(data)  # hashlib releases the GIL on large buffers
        self._size += written
        return written

    def tell(self) -> int:
        """Bytes written so far: what `zipfile` records as entry offsets."""
        return self._size

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        self.flush()

    @property
    def size(self) -> int:
        return self._size

    def digests(self) -> dict[str, str]:
        """Lower-case hex digest per algorithm, of everything written so far."""
        return {algorithm: hasher.hexdigest() for algorithm, hasher in self._hashers.items()}


def file_digests(path: Path, algorithms: Iterable[str] = DEFAULT_ALGORITHMS) -> dict[str, str]:
    """Digests of a file on disk (read once, in 1 MiB chunks), for verification."""
    hashers = _hashers(algorithms)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as source:
        while count := source.readinto(buffer):
            for hasher in hashers.values():
                hasher.update(view[:count])
    return {algorithm: hasher.hexdigest() for algorithm, hasher in hashers.items()}

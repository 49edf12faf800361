"""Byte ranges: what the backends read, and how an HTTP `Range` header (RFC 9110 section 14) maps onto one.

Only a single range is honoured. A multi-range request would need a multipart/byteranges body, which no AUXIP client
uses (they resume or parallelise with one range per request), so it is answered with the whole object (200), which
RFC 9110 allows: a server MAY ignore the Range header. Syntactically invalid headers and units other than `bytes` are
ignored the same way; only a well-formed range that starts beyond the end is an error (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE_RANGE = re.compile(r"bytes=(?:(\d+)-(\d*)|-(\d+))")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """`length` bytes from offset `start` (both >= 0)."""

    start: int
    length: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.length < 0:
            raise ValueError(f"invalid byte range start={self.start} length={self.length}")

    @property
    def end(self) -> int:
        """Offset one past the last byte."""
        return self.start + self.length

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"

    def http_header(self) -> str:
        """The `Range` request header value selecting exactly this range (S3 ranged GET)."""
        return f"bytes={self.start}-{self.end - 1}"


class RangeNotSatisfiableError(ValueError):
    def __init__(self, header: str, size: int) -> None:
        super().__init__(f"range {header!r} is outside an object of {size} bytes")
        self.size = size


def parse_range_header(header: str | None, size: int) -> ByteRange | None:
    """The single range `header` selects in an object of `size` bytes; None means "send it all" (200).

    Raises `RangeNotSatisfiableError` for a well-formed range that selects no byte (answer 416).
    """
    if header is None:
        return None
    match = _SINGLE_RANGE.fullmatch(header.replace(" ", ""))
    if match is None:
        return None  # other unit, multiple ranges or bad syntax: ignored, see the module docstring
    first, last, suffix = match.groups()
    if suffix is not None:
        suffix_length = int(suffix)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiableError(header, size)
        start = max(size - suffix_length, 0)
        return ByteRange(start, size - start)
    start = int(first)
    if last and int(last) < start:
        return None  # `bytes=5-2` is invalid syntax, not an unsatisfiable range
    if start >= size:
        raise RangeNotSatisfiableError(header, size)
    end = min(int(last) + 1, size) if last else size
    return ByteRange(start, end - start)

"""Wire formats shared by the entity sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ZERO = timedelta(0)


def odata_timestamp(value: datetime) -> str:
    """UTC, millisecond precision (truncated), `Z` suffix: `YYYY-MM-DDThh:mm:ss.sssZ` as the contract requires.

    `isoformat` rather than `strftime`: a page of 1,000 products renders 6,000 timestamps, and strftime was the
    largest single cost of serialising it.
    """
    if value.utcoffset() != ZERO:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"

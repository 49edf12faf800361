"""Wire formats shared by the entity sets."""

from __future__ import annotations

from datetime import UTC, datetime


def odata_timestamp(value: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix: `YYYY-MM-DDThh:mm:ss.sssZ` as the contract requires."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

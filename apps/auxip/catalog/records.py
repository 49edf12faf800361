"""The typed input of a publication: what the ingestion side knows about a file before it becomes visible."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

AttributeValue = str | int | float | datetime | bool

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def value_type_of(value: AttributeValue) -> str:
    """The OData ValueType of a Python value (bool first: it is a subclass of int)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, datetime):
        return "DateTimeOffset"
    if isinstance(value, str):
        return "String"
    raise TypeError(f"unsupported attribute value type {type(value).__name__}")


def _require_aware(label: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{label} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """One product to publish.

    `checksums` maps algorithm to hex value and must contain MD5 (the contract requires it; it is also the identity
    used to tell an idempotent republication from a conflicting one). Exactly one of `eviction_date` and `retention`
    is given; a retention is counted from the PublicationDate.
    """

    name: str
    content_length: int
    checksums: Mapping[str, str]
    origin_date: datetime
    content_date_start: datetime
    storage_key: str
    content_date_end: datetime | None = None
    eviction_date: datetime | None = None
    retention: timedelta | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    content_type: str = DEFAULT_CONTENT_TYPE
    # When the checksums were computed; defaults to the PublicationDate.
    checksum_date: datetime | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 255:
            raise ValueError(f"product name must be 1 to 255 characters: {self.name!r}")
        if self.content_length < 0:
            raise ValueError(f"{self.name}: content_length must be >= 0")
        if not self.checksums.get("MD5"):
            raise ValueError(f"{self.name}: an MD5 checksum is required")
        if (self.eviction_date is None) == (self.retention is None):
            raise ValueError(f"{self.name}: give exactly one of eviction_date and retention")
        for label in ("origin_date", "content_date_start", "content_date_end", "eviction_date", "checksum_date"):
            _require_aware(f"{self.name}: {label}", getattr(self, label))
        if self.content_date_end is not None and self.content_date_end < self.content_date_start:
            raise ValueError(f"{self.name}: content_date_end is before content_date_start")
        for attribute_name, value in self.attributes.items():
            value_type_of(value)
            if isinstance(value, datetime):
                _require_aware(f"{self.name}: attribute {attribute_name}", value)

    @property
    def md5(self) -> str:
        return self.checksums["MD5"].lower()

    def eviction_after(self, publication_date: datetime) -> datetime:
        if self.eviction_date is not None:
            return self.eviction_date
        assert self.retention is not None  # guaranteed by __post_init__
        return publication_date + self.retention

"""Column types shared by the catalog models.

`UTCDateTime` exists because the contract's timestamps are UTC instants with microsecond precision, and the two
backends disagree on how to store them: PostgreSQL has `timestamptz` (microseconds, stored as UTC), while SQLite has
no date type at all and SQLAlchemy's `DateTime` writes a naive ISO string, silently dropping any offset. The decorator
normalises every value to aware UTC on the way in (refusing naive values, whose meaning is ambiguous) and hands back
aware UTC on the way out, so both backends round-trip identically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime with microseconds on every backend (timestamptz on PostgreSQL)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: catalog timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores a fixed-width "YYYY-MM-DD hh:mm:ss.ffffff" string: keeping it naive UTC makes the text
            # order equal to the time order, so comparisons and indexes stay correct.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: What an open-ended validity (a SAFE name with a start only, stored as a NULL end) means to clients: the API
#: renders and filters it as this instant, because clients parse ContentDate/End as a timestamp.
OPEN_END: Final = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

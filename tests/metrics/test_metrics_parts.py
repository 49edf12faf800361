"""The small parts of `auxip.metrics` on their own: Gauge rendering, the response cache, the seconds expression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, literal, select

from auxip.catalog.types import UTCDateTime
from auxip.metrics.cache import TtlCache
from auxip.metrics.elapsed import elapsed_seconds
from auxip.metrics.render import gauge_text


@pytest.mark.parametrize(
    ("integer", "seconds", "expected"),
    [(6000, None, "6000"), (0, None, "0"), (None, 150.0, "150.000"), (None, 0.0004, "0.000"), (None, 1.2346, "1.235")],
)
def test_gauge_text(integer: int | None, seconds: float | None, expected: str) -> None:
    assert gauge_text(integer, seconds) == expected


def test_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = TtlCache(5.0, max_entries=2, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    now[0] = 4.9
    assert (cache.get("a"), cache.get("b")) == (1, 2)
    cache.put("c", 3)  # evicts the oldest insertion, "a"
    assert (cache.get("a"), cache.get("c")) == (None, 3)
    now[0] = 5.0
    assert cache.get("b") is None


def test_cache_disabled_with_zero_ttl() -> None:
    cache = TtlCache(0.0)
    cache.put("a", 1)
    assert cache.get("a") is None


def test_elapsed_seconds_on_sqlite_is_exact_to_the_millisecond() -> None:
    start = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    end = start + timedelta(days=2, seconds=7, milliseconds=250)
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        value = connection.scalar(select(elapsed_seconds(literal(start, UTCDateTime()), literal(end, UTCDateTime()))))
    assert value is not None
    assert round(value, 3) == 2 * 86400 + 7.25

"""A few seconds of memory for computed responses, so repeated identical Metrics queries aggregate once.

Metrics are computed from the whole catalog; dashboards and the conformance tools poll the same URLs every few
seconds. A stale-by-seconds value is what any metrics scrape tolerates, and the Timestamp in the body says when it
was computed. Bounded: the oldest entries go first when full; entries are per process (each API replica aggregates
on its own, which is fine at one aggregation per query per TTL).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class TtlCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[key] = (self._clock() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

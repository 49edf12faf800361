"""A token bucket shared by a source's transfers: `bandwidth_limit` bytes per second for all of them together."""

from __future__ import annotations

import asyncio
import time


class Throttle:
    def __init__(self, rate: int | None, burst_seconds: float = 0.25) -> None:
        self.rate = rate
        self._capacity = (rate or 0) * burst_seconds
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def consume(self, amount: int) -> None:
        """Wait until `amount` bytes may pass (returns at once when unlimited)."""
        if self.rate is None:
            return
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= amount
            if self._tokens < 0:
                await asyncio.sleep(-self._tokens / self.rate)


UNLIMITED = Throttle(None)

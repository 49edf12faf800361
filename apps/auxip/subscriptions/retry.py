"""When to retry a failed notification, and when to give up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a number of attempts and by the notification's age.

    Jitter spreads the retries of many notifications to one endpoint that was down, so they do not all hit it again
    in the same second when it comes back.
    """

    base_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 12
    max_age: timedelta = timedelta(days=2)
    jitter: float = 0.5  # fraction of the delay that is randomised

    def delay(self, attempts: int, rand: random.Random | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        exponent = max(attempts - 1, 0)
        raw = min(self.base_delay * (1 << min(exponent, 30)), self.max_delay)
        # Jitter, not security: a predictable generator is fine.
        spread = (rand.random() if rand is not None else random.random()) * self.jitter  # noqa: S311
        return raw * (1 - spread)

    def gives_up(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        return attempts >= self.max_attempts or now - created_at >= self.max_age

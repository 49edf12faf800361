"""Per-user download quotas: parallel downloads (in-process counter) and volume per sliding window (records).

`async with quotas.download_slot(principal):` wraps one download; exceeding a limit raises ODataError 429 with
`Retry-After`. The parallel counter is per process: with N API workers a user can run up to N times the limit; the
volume limit is shared through the database. The volume limit is soft: a download starts while the used volume is
below the limit, so the last one may overshoot (refusing a file larger than the remaining volume would make files
larger than the whole limit undownloadable).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from auxip.api.errors import ODataError
from auxip.auth.downloads import VolumeEntry, volume_since
from auxip.auth.principal import Principal
from auxip.auth.settings import QuotaLimits, QuotaSettings


def limits_for(settings: QuotaSettings, principal: Principal) -> QuotaLimits:
    """Per-user limits win; otherwise the most generous limits among the user's roles; otherwise the default."""
    if principal.username in settings.per_user:
        return settings.per_user[principal.username]
    candidates = [settings.per_role[role] for role in principal.roles if role in settings.per_role]
    if not candidates:
        return settings.default
    return QuotaLimits(
        max_parallel_downloads=max(c.max_parallel_downloads for c in candidates),
        max_bytes_per_window=max(c.max_bytes_per_window for c in candidates),
        window=max(c.window for c in candidates),
    )


def volume_retry_after(entries: Sequence[VolumeEntry], limits: QuotaLimits, now: datetime) -> int | None:
    """Seconds until enough old downloads leave the window for the used volume to drop below the limit; None if ok."""
    used = sum(entry.bytes for entry in entries)
    if used < limits.max_bytes_per_window:
        return None
    for entry in entries:  # oldest first: they are the first to leave the window
        used -= entry.bytes
        if used < limits.max_bytes_per_window:
            return max(1, math.ceil((entry.started_at + limits.window - now).total_seconds()))
    raise AssertionError("unreachable: the volume drops to 0 once every entry has left the window")


def too_many(message: str, retry_after: int) -> ODataError:
    return ODataError(429, "TooManyRequests", message, headers={"Retry-After": str(retry_after)})


class Quotas:
    def __init__(
        self, settings: QuotaSettings, engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.active: Counter[str] = Counter()

    async def check_volume(self, principal: Principal) -> None:
        limits = limits_for(self.settings, principal)
        now = self.clock()

        def read() -> list[VolumeEntry]:
            with Session(self.engine) as session:
                return volume_since(session, principal.username, now - limits.window)

        retry_after = volume_retry_after(await asyncio.to_thread(read), limits, now)
        if retry_after is not None:
            raise too_many(
                f"download volume quota of {limits.max_bytes_per_window} bytes per {limits.window} reached", retry_after
            )

    @asynccontextmanager
    async def download_slot(self, principal: Principal) -> AsyncIterator[None]:
        await self.check_volume(principal)
        # No await between the check and the increment: on one event loop, the two are atomic.
        limits = limits_for(self.settings, principal)
        if self.active[principal.username] >= limits.max_parallel_downloads:
            raise too_many(
                f"at most {limits.max_parallel_downloads} parallel downloads per user",
                self.settings.parallel_retry_after_seconds,
            )
        self.active[principal.username] += 1
        try:
            yield
        finally:
            self.active[principal.username] -= 1
            if self.active[principal.username] <= 0:
                del self.active[principal.username]

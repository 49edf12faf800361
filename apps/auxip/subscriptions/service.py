"""The subscription worker: match new products, then deliver due notifications; `run_once` or `run_forever`.

Every step's state is in the database (cursor, outbox, leases), so a worker can be killed and another started on the
same database at any point; several workers may run at once (PostgreSQL) without sending anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

import aiohttp
from sqlalchemy import Engine

from auxip.subscriptions.delivery import post_notification
from auxip.subscriptions.matcher import match_all
from auxip.subscriptions.notifier import Claimed, Outcome, claim_due, record_outcomes
from auxip.subscriptions.product_filter import ProductFilterCompiler, compile_product_filter
from auxip.subscriptions.retry import RetryPolicy

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunReport:
    products_matched: int
    notifications_created: int
    delivered: int
    retried: int
    failed: int


class SubscriptionService:
    def __init__(
        self,
        engine: Engine,
        *,
        compile_filter: ProductFilterCompiler = compile_product_filter,
        retry: RetryPolicy | None = None,
        batch_size: int = 500,
        claim_limit: int = 100,
        max_claim_rounds: int = 10,
        http_timeout: timedelta = timedelta(seconds=10),
        lease: timedelta = timedelta(minutes=2),
        concurrency: int = 10,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        if lease <= http_timeout:
            # A lease shorter than a delivery would let another worker send the same row while this one still waits.
            raise ValueError("lease must be longer than http_timeout")
        self._engine = engine
        self._compile_filter = compile_filter
        self._retry = retry or RetryPolicy()
        self._batch_size = batch_size
        self._claim_limit = claim_limit
        self._max_claim_rounds = max_claim_rounds
        self._http_timeout = http_timeout
        self._lease = lease
        self._concurrency = asyncio.Semaphore(concurrency)
        self._now = now
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SubscriptionService:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self._http_timeout.total_seconds())
            self._http = aiohttp.ClientSession(timeout=timeout)
        return self._http

    async def run_once(self) -> RunReport:
        """Match everything published since the last run, then deliver what is due (bounded rounds)."""
        products, created = await asyncio.to_thread(
            match_all, self._engine, self._compile_filter, self._now, self._batch_size
        )
        delivered = retried = failed = 0
        for _ in range(self._max_claim_rounds):
            claimed = await asyncio.to_thread(claim_due, self._engine, self._now(), self._lease, self._claim_limit)
            if not claimed:
                break
            outcomes = await asyncio.gather(*(self._deliver(item) for item in claimed))
            ok, gave_up = await asyncio.to_thread(record_outcomes, self._engine, outcomes, self._now(), self._retry)
            delivered += ok
            failed += gave_up
            retried += len(outcomes) - ok - gave_up
            if len(claimed) < self._claim_limit:
                break
        return RunReport(products, created, delivered, retried, failed)

    async def _deliver(self, claimed: Claimed) -> Outcome:
        async with self._concurrency:
            sent_at = self._now()
            error = await post_notification(self._client(), claimed.delivery, sent_at)
        if error is not None:
            # The endpoint URL and ids only: the Delivery's password has repr=False and is never formatted here.
            log.warning(
                "notification of product %s for subscription %s to %s failed (attempt %d): %s",
                claimed.delivery.product_id, claimed.delivery.subscription_id, claimed.delivery.endpoint,
                claimed.attempts, error,
            )  # fmt: skip
        return Outcome(claimed, error, sent_at)

    async def run_forever(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        """`run_once` every `interval` seconds until `stop` is set; a failing run is logged and retried."""
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception:
                    log.exception("subscription worker run failed; retrying in %.0fs", interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        finally:
            await self.close()

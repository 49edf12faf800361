"""The ingestion service: discovery per source, one worker pool per stage, eviction — in one asyncio loop.

Stages hand items on through the database state (`auxip.ingest.state`) and wake each other in-process, so an item
moves on as soon as the previous stage committed; an idle stage also sweeps for due items every `sweep_seconds`
(retries, items of another process, anything a lost wake-up left behind). Several processes can run the same
service on one database: claims keep them from working on the same item.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update

from auxip.catalog import leases
from auxip.config import AuxipConfig, ProcessRole
from auxip.ingest.bus import EventBus
from auxip.ingest.discovery import Discovery
from auxip.ingest.eviction import evict_expired
from auxip.ingest.models import FLOW, TERMINAL, IngestItem
from auxip.ingest.quarantine import Rejection, quarantine
from auxip.ingest.scanner import ClamdScanner
from auxip.ingest.sources.base import Source
from auxip.ingest.sources.factory import open_source
from auxip.ingest.stages import STAGES, DuplicateProduct, Pipeline, Retry, StagedInputMissing, retry_delay
from auxip.ingest.state import (
    ClaimLost,
    Item,
    advance,
    claim,
    defer,
    renew,
    staging_lease,
    staging_node,
    utcnow,
    worker_id,
)
from auxip.routing.engine import RoutingEngine, RoutingSettings
from auxip.storage import Storage

log = logging.getLogger("auxip.ingest")

#: States whose next stage reads the bytes in the staging area of the process that fetched them.
STAGED_STATES = ("fetched", "scanned", "prepared", "routing")
#: The lease (auxip.catalog.leases) whose holder is the one process of a deployment that evicts.
EVICTION_LEASE = "eviction"


def release_orphaned_claims(engine: Engine) -> int:
    """Claims of processes of this host that no longer exist (killed workers) are released at once at start."""
    host = socket.gethostname()[:20]
    with engine.begin() as conn:
        owners = conn.execute(select(IngestItem.claimed_by).where(IngestItem.claimed_by.is_not(None)).distinct())
        dead = []
        for (owner,) in owners:
            owner_host, _, rest = owner.partition(":")
            pid = rest.partition(":")[0]
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                dead.append(owner)
        if not dead:
            return 0
        result = conn.execute(
            update(IngestItem).where(IngestItem.claimed_by.in_(dead)).values(claimed_by=None, next_attempt_at=utcnow())
        )
        return int(result.rowcount)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def stage_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(IngestItem.state, func.count()).group_by(IngestItem.state))
        return {state: int(count) for state, count in rows}


def pipeline_status(engine: Engine, now: datetime | None = None) -> dict[str, Any]:
    """What `auxip status` shows: items per state, the backlog, publication rates and the latest errors."""
    now = now or utcnow()
    stages = stage_counts(engine)
    with engine.connect() as conn:
        rates = {
            label: int(
                conn.execute(
                    select(func.count())
                    .select_from(IngestItem)
                    .where(IngestItem.state.in_(("published", "announced")), IngestItem.updated_at >= now - window)
                ).scalar_one()
            )
            for label, window in (("last_5_minutes", timedelta(minutes=5)), ("last_hour", timedelta(hours=1)))
        }
        errors = conn.execute(
            select(IngestItem.id, IngestItem.source, IngestItem.name, IngestItem.state, IngestItem.attempts,
                   IngestItem.last_error)
            .where(IngestItem.last_error.is_not(None), IngestItem.state.not_in(TERMINAL))
            .order_by(IngestItem.updated_at.desc())
            .limit(5)
        )  # fmt: skip
        last_errors = [dict(row._mapping) for row in errors]
    return {
        "stages": stages,
        "backlog": sum(count for state, count in stages.items() if state not in TERMINAL),
        "published": rates,
        "last_errors": last_errors,
    }


@dataclass
class _Wakes:
    events: dict[str, asyncio.Event]

    def __getitem__(self, state: str) -> asyncio.Event:
        return self.events.setdefault(state, asyncio.Event())


class IngestService:
    def __init__(
        self,
        config: AuxipConfig,
        engine: Engine,
        storage: Storage,
        bus: EventBus,
        roles: Collection[ProcessRole] | None = None,
        helper: bool = False,
    ) -> None:
        #: What this process runs (default: the configuration's `roles`): `ingest` (discovery and the stage workers,
        #: the `routing` stage of routed files included), `route` (deliveries to targets), `evict` (under a lease).
        self.roles = frozenset(config.roles if roles is None else roles) & {"ingest", "route", "evict"}
        #: A helper process (`ingest.processes` > 1): stage workers only; discovery, eviction, deliveries and the
        #: helpers themselves run in the main process.
        self.helper = helper
        self.config = config
        self.engine = engine
        self.bus = bus
        scanner = None if config.scanner in (None, "disabled") else ClamdScanner(config.scanner)  # type: ignore[arg-type]
        self.sources: dict[str, Source] = {s.name: open_source(s) for s in config.sources}
        self.pipeline = Pipeline(
            engine=engine,
            storage=storage,
            scanner=scanner,
            sources=self.sources,
            source_types={s.name: list(s.product_types) for s in config.sources},
            source_priority={s.name: s.priority for s in config.sources},
            routed_sources=config.routed_sources,
            bus=bus,
            settings=config.ingest,
            retention=config.retention,
            rules=config.ingest.transform_rules,
            staging_dir=config.staging_dir,
            quarantine_dir=config.data_dir / "quarantine",
            node=staging_node(config.staging_dir),
            archive_limits=config.ingest.archive_limits,
            hold=timedelta(seconds=config.ingest.lease_seconds),
        )
        self.wakes = _Wakes({})
        self.lease = timedelta(seconds=config.ingest.lease_seconds)
        self.stages = dict(STAGES)
        self.routing: RoutingEngine | None = None
        if config.routes:
            settings = RoutingSettings(
                inbox_root=config.inbox_dir,
                lease=self.lease,
                circuit_threshold=config.ingest.circuit_threshold,
                circuit_open_seconds=config.ingest.circuit_open_seconds,
                sweep_seconds=config.ingest.sweep_seconds,
            )
            self.routing = RoutingEngine(config.routes, engine, storage, bus, self.pipeline, settings)
            self.stages["routing"] = ("route", self.routing.route_item)
            self.routing.on_file_delivered = self.wakes["routing"].set

    async def close(self) -> None:
        for source in self.sources.values():
            await source.close()

    # --- one item through one stage ---------------------------------------------------------------------------------

    async def _keep_claim(self, item: Item, worker: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            renew(self.engine, item, worker, self.lease)

    async def _handle(self, item: Item, worker: str) -> None:
        """Run the item's stage, then — while the stage kept the claim — the following ones in the same task."""
        current = item
        while True:
            done, held = await self._run_stage(self.stages[current.state][0], current, worker)
            if not done:
                return
            if held is None or held.state not in self.stages or held.state == "discovered":
                self.wakes[self._next_state(current)].set()
                return
            current = held

    async def _run_stage(self, stage_name: str, item: Item, worker: str) -> tuple[bool, Item | None]:
        """One stage of one item: (succeeded, the item if the stage kept it); failures are handled here."""
        stage = self.stages[item.state][1]
        keeper = asyncio.create_task(self._keep_claim(item, worker))
        held: Item | None = None
        try:
            held = await stage(self.pipeline, item, worker)
        except Rejection as rejection:
            log.warning(
                "quarantined",
                extra={"item": item.id, "entry": item.name, "reason": rejection.reason, "detail": rejection.detail},
            )
            await asyncio.to_thread(self._quarantine, stage_name, item, worker, rejection)
        except Retry as retry:
            delay = (
                timedelta(seconds=retry.delay) if retry.delay else retry_delay(self.config.ingest, item.attempts + 1)
            )
            if retry.count_attempt and item.attempts + 1 >= self.config.ingest.max_attempts:
                await asyncio.to_thread(
                    self._quarantine, stage_name, item, worker, Rejection("stage-failed", retry.detail)
                )
            else:
                log.info("retry", extra={"item": item.id, "stage": stage_name, "error": retry.detail})
                defer(self.engine, item, worker, delay, retry.detail, retry.count_attempt)
        except DuplicateProduct as duplicate:
            log.info("duplicate", extra={"item": item.id, "entry": item.name, "detail": str(duplicate)})
            advance(self.engine, item, worker, "duplicate", {"duplicate": str(duplicate)})
            self._cleanup(item)
        except StagedInputMissing as missing:
            log.warning("refetch", extra={"item": item.id, "detail": str(missing)})
            advance(self.engine, item, worker, "discovered", {"refetch": str(missing)})
        except ClaimLost as lost:
            log.warning("claim lost", extra={"item": item.id, "detail": str(lost)})
        except asyncio.CancelledError:
            # A clean stop: give the item back at once rather than letting its lease run out.
            defer(self.engine, item, worker, timedelta(0), "interrupted by shutdown", count_attempt=False)
            raise
        except Exception as exc:
            log.exception("stage failed", extra={"item": item.id, "stage": stage_name})
            if item.attempts + 1 >= self.config.ingest.max_attempts:
                await asyncio.to_thread(
                    self._quarantine,
                    stage_name,
                    item,
                    worker,
                    Rejection("stage-failed", f"{type(exc).__name__}: {exc}"),
                )
            else:
                defer(self.engine, item, worker, retry_delay(self.config.ingest, item.attempts + 1), repr(exc))
        else:
            return True, held
        finally:
            keeper.cancel()
        return False, None

    def _next_state(self, item: Item) -> str:
        if item.state == "fetched" and item.source in self.pipeline.routed_sources:
            return "routing"
        if item.state not in FLOW or item.state == FLOW[-1]:
            return item.state
        return FLOW[FLOW.index(item.state) + 1]

    def _quarantine(self, stage_name: str, item: Item, worker: str, rejection: Rejection) -> None:
        staged = self.pipeline.staged(item)
        published = item.details.get("published_file")
        if not staged.exists() and published:
            staged = self.pipeline.item_dir(item) / published
        quarantine(self.engine, self.pipeline.quarantine_dir, item, worker, stage_name, rejection, staged)
        self._cleanup(item)

    def _cleanup(self, item: Item) -> None:
        shutil.rmtree(self.pipeline.item_dir(item), ignore_errors=True)

    # --- loops --------------------------------------------------------------------------------------------------------

    async def _stage_loop(
        self, state: str, concurrency: int, stop: asyncio.Event, sources: list[str] | None = None
    ) -> None:
        stage_name = self.stages[state][0]
        worker = worker_id(stage_name if sources is None else f"{stage_name}-{sources[0]}")
        wake = self.wakes[state]
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            wake.set()

        try:
            while not stop.is_set():
                wake.clear()
                free = concurrency - len(running)
                items = (
                    claim(self.engine, state, worker, self.lease, free, sources, self._staging_affinity(state))
                    if free > 0
                    else []
                )
                for item in items:
                    task = asyncio.create_task(self._handle(item, worker))
                    running.add(task)
                    task.add_done_callback(finished)
                if items and len(items) == free:
                    await asyncio.sleep(0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_either(wake, stop), timeout=self.config.ingest.sweep_seconds)
        finally:
            for task in list(running):
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _staging_affinity(self, state: str) -> str | None:
        """Stages that read staged bytes run where they were fetched, or anywhere once that staging area is gone."""
        return self.pipeline.node if state in STAGED_STATES else None

    async def _staging_lease_loop(self, stop: asyncio.Event) -> None:
        """Hold this staging area's lease while the process lives: its staged items stay with it until the lease
        runs out (one lease after a crash, at once after a clean stop), then any process may take them over."""
        node = self.pipeline.node
        name = staging_lease(node)
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(leases.hold, self.engine, name, node, self.lease)
                except Exception:
                    log.exception("staging lease not renewed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.lease.total_seconds() / 3)
        finally:
            if not self.helper:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(leases.release, self.engine, name, node)

    async def _discovery_loop(self, name: str, stop: asyncio.Event) -> None:
        settings = next(s for s in self.config.sources if s.name == name)
        source = self.sources[name]
        discovery = Discovery(self.engine, source, settings, self.config.ingest)
        changed = asyncio.Event()
        watcher = None
        if hasattr(source, "changes"):

            async def watch() -> None:
                async for _ in source.changes():
                    changed.set()

            watcher = asyncio.create_task(watch())
        try:
            while not stop.is_set():
                changed.clear()
                try:
                    new, wait = await discovery.poll()
                except Exception:
                    log.exception("discovery failed", extra={"source": name})
                    new, wait = 0, None
                if new:
                    self.wakes["discovered"].set()
                delay = max(wait or 0, settings.poll_interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_either(changed, stop), timeout=delay)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _eviction_loop(self, stop: asyncio.Event) -> None:
        """Eviction in one process of the deployment at a time: the holder of the `eviction` lease, renewed every
        round; another process takes over once a dead holder's lease has run out (two rounds)."""
        interval = self.config.ingest.eviction_interval_seconds
        holder = worker_id("evict")
        lease = timedelta(seconds=2 * interval + self.lease.total_seconds())
        try:
            while not stop.is_set():
                try:
                    if await asyncio.to_thread(leases.hold, self.engine, EVICTION_LEASE, holder, lease):
                        await evict_expired(self.engine, self.pipeline.storage, recheck=timedelta(seconds=2 * interval))
                except Exception:
                    log.exception("eviction failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(leases.release, self.engine, EVICTION_LEASE, holder)

    async def run(self, stop: asyncio.Event) -> None:
        if "ingest" in self.roles and self.config.scanner == "disabled":
            log.warning("ANTIVIRUS SCANNING IS DISABLED (scanner: disabled): files are published unscanned")
        released = release_orphaned_claims(self.engine)
        if released:
            log.info("released orphaned claims", extra={"items": released})
        tasks: list[asyncio.Task[None]] = []
        ingest = "ingest" in self.roles
        main = not self.helper
        helpers = _start_helpers(self.config) if ingest and main else []
        if ingest and main:
            tasks += [asyncio.create_task(self._discovery_loop(name, stop)) for name in self.sources]
        if "evict" in self.roles and main:
            tasks.append(asyncio.create_task(self._eviction_loop(stop)))
        if "route" in self.roles and main and self.routing is not None:
            tasks.append(asyncio.create_task(self.routing.run(stop)))
        if ingest:
            tasks.append(asyncio.create_task(self._staging_lease_loop(stop)))
            tasks += [
                asyncio.create_task(self._stage_loop("discovered", s.concurrency, stop, [s.name]))
                for s in self.config.sources
            ]
            tasks += [
                asyncio.create_task(self._stage_loop(state, self.config.ingest.workers, stop))
                for state in self.stages
                if state != "discovered"
            ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(_stop_helpers, helpers)


async def _either(event: asyncio.Event, stop: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


# --- helper processes: one event loop per core ------------------------------------------------------------------


def _start_helpers(config: AuxipConfig) -> list[multiprocessing.process.BaseProcess]:
    """`ingest.processes - 1` helper processes running the stage workers on the same database.

    One asyncio loop drives one core: its SQL, JSON and bookkeeping hold the GIL. Helpers claim items like any other
    worker, so nothing is done twice; they are started fresh (spawn) so they share no connection with this process.
    """
    context = multiprocessing.get_context("spawn")
    helpers: list[multiprocessing.process.BaseProcess] = [
        context.Process(target=_helper_main, args=(config,), name=f"auxip-stages-{index}", daemon=True)
        for index in range(1, config.ingest.processes)
    ]
    for helper in helpers:
        helper.start()
    return helpers


def _stop_helpers(helpers: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for helper in helpers:
        helper.terminate()  # SIGTERM: a clean stop, claims given back
    for helper in helpers:
        helper.join(30)
        if helper.is_alive():
            helper.kill()


def _helper_main(config: AuxipConfig) -> None:
    from auxip.catalog.migrate import make_engine
    from auxip.ingest.bus import open_bus
    from auxip.logs import configure

    configure(config.log_format)

    async def main() -> None:
        engine = make_engine(config.catalog_url)
        storage = config.open_storage()
        bus = open_bus(config.bus, engine)
        service = IngestService(config, engine, storage, bus, roles={"ingest"}, helper=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await service.run(stop)
        finally:
            await service.close()
            await bus.close()
            await storage.close()
            engine.dispose()

    asyncio.run(main())

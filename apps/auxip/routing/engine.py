"""The routing engine: plan deliveries for routed files and published products, deliver them, finish the files.

- Files of a source that triggers a route go through the ingestion pipeline's fetch and antivirus stages, then wait
  in the `routing` state: the engine plans one delivery per target, and once every delivery succeeded runs the
  route's post-delivery action at the source and marks the file `routed` (its staged bytes are then removed).
- `product.published` events (consumer group `routing`) plan deliveries of matching products from storage.
- One delivery worker per target: uploads with the target adapter (temporary name, verify, rename), writes an audit
  record per attempt, backs off with jitter, opens the target's circuit after consecutive failures, and dead-letters
  a delivery after the route's `max_attempts` (`auxip routes retry` puts it back).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Update, and_, bindparam, func, insert, select, update

from auxip.catalog.models import Attribute, Checksum, Product
from auxip.claims import claim_statement, insert_ignoring_duplicates
from auxip.ingest import faults
from auxip.ingest.bus import PRODUCT_PUBLISHED, Event, EventBus
from auxip.ingest.checksums import file_digests
from auxip.ingest.models import IngestItem
from auxip.ingest.quarantine import Rejection
from auxip.ingest.sources.base import PostDeliverySource, RemoteFile
from auxip.ingest.stages import Pipeline, Retry, link_into_place, same_filesystem
from auxip.ingest.state import Item, advance, utcnow, worker_id
from auxip.routing.models import RouteAttempt, RouteDelivery, TargetState
from auxip.routing.settings import PublishedTrigger, RouteSettings, SourceTrigger, TargetSettings
from auxip.routing.targets.base import Target
from auxip.routing.targets.factory import open_target
from auxip.storage import Storage
from auxip.subscriptions.retry import RetryPolicy

log = logging.getLogger("auxip.routing")

#: The object-store prefix of routed files in flight (product keys start with an upper-case product type).
ROUTING_PREFIX = "routing"


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    inbox_root: Path
    lease: timedelta = timedelta(seconds=60)
    circuit_threshold: int = 5
    circuit_open_seconds: float = 30.0
    sweep_seconds: float = 1.0


def routes_by_source(routes: Sequence[RouteSettings]) -> dict[str, list[RouteSettings]]:
    by_source: dict[str, list[RouteSettings]] = {}
    for route in routes:
        if isinstance(route.trigger, SourceTrigger):
            by_source.setdefault(route.trigger.source, []).append(route)
    return by_source


def matches(trigger: PublishedTrigger, name: str, product_type: str, attributes: Mapping[str, str]) -> bool:
    if trigger.product_types and not any(fnmatchcase(product_type, p) for p in trigger.product_types):
        return False
    if trigger.name_pattern and not re.search(trigger.name_pattern, name):
        return False
    if trigger.platforms and attributes.get("platformSerialIdentifier") not in trigger.platforms:
        return False
    return all(attributes.get(key) == value for key, value in trigger.attributes.items())


def routed_file_key(item: Item) -> str:
    """Where a routed file's bytes wait for their deliveries in the object store (removed once it is routed): not
    on the disk of the process that fetched it, so a delivery worker of any host can send it."""
    return f"{ROUTING_PREFIX}/item-{item.id}/{item.name}"


def _target_key(route: str, target: str) -> str:
    return f"{route}/{target}"


@functools.cache
def _claim_deliveries(dialect: str) -> Update:
    due = and_(
        RouteDelivery.route == bindparam("c_route"),
        RouteDelivery.target == bindparam("c_target"),
        RouteDelivery.state == "pending",
        RouteDelivery.next_attempt_at <= bindparam("c_now"),
    )
    return claim_statement(RouteDelivery, due, dialect, tuple(RouteDelivery.__table__.columns))


# Built once: every delivery runs them, and building SQLAlchemy statements costs more than running them.
_INSERT_ATTEMPT = insert(RouteAttempt)
_FILE_DELIVERY_STATES = select(RouteDelivery.state).where(RouteDelivery.file_key == bindparam("c_file"))
_UNDELIVERED_OF_FILE = (
    select(func.count())
    .select_from(RouteDelivery)
    .where(RouteDelivery.file_key == bindparam("c_file"), RouteDelivery.state != "delivered")
)
_ROUTED_ITEM_DUE = (
    update(IngestItem)
    .where(IngestItem.id == bindparam("c_id"), IngestItem.state == "routing", IngestItem.claimed_by.is_(None))
    .values(next_attempt_at=bindparam("c_now"))
)
_CIRCUIT_OPEN_UNTIL = select(TargetState.open_until).where(TargetState.target == bindparam("c_target"))
_TARGET_SUCCEEDED = (
    update(TargetState)
    .where(TargetState.target == bindparam("c_target"), TargetState.consecutive_failures > 0)
    .values(consecutive_failures=0, open_until=None, last_error=None)
)


@functools.cache
def _delivery_outcome(columns: frozenset[str]) -> Update:
    mine = and_(RouteDelivery.id == bindparam("c_id"), RouteDelivery.claimed_by == bindparam("c_worker"))
    return update(RouteDelivery).where(mine).values({name: bindparam(f"v_{name}") for name in columns})


class RoutingEngine:
    def __init__(
        self,
        routes: Sequence[RouteSettings],
        engine: Engine,
        storage: Storage,
        bus: EventBus,
        pipeline: Pipeline,
        settings: RoutingSettings,
    ) -> None:
        self.routes = {route.name: route for route in routes}
        self.by_source = routes_by_source(routes)
        self.engine = engine
        self.storage = storage
        self.bus = bus
        self.pipeline = pipeline
        self.settings = settings
        self._adapters: dict[str, Target] = {}
        #: One wake-up per target loop: new deliveries planned, or one of its uploads finished (a free slot).
        self._wakes: dict[str, asyncio.Event] = {}
        #: Called when every delivery of a routed file is done, so its `routing` stage runs at once.
        self.on_file_delivered: Callable[[], None] = lambda: None

    def target(self, route: str, name: str) -> TargetSettings:
        return next(t for t in self.routes[route].targets if t.name == name)

    def adapter(self, route: str, name: str) -> Target:
        key = _target_key(route, name)
        if key not in self._adapters:
            self._adapters[key] = open_target(self.target(route, name), self.settings.inbox_root)
        return self._adapters[key]

    async def close(self) -> None:
        for adapter in self._adapters.values():
            await adapter.close()

    # --- planning ----------------------------------------------------------------------------------------------------

    def _plan(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(insert_ignoring_duplicates(self.engine.dialect.name, RouteDelivery), rows)
        for wake in self._wakes.values():
            wake.set()
        return int(result.rowcount or 0)

    def _delivery_rows(
        self,
        routes: Sequence[RouteSettings],
        file_key: str,
        name: str,
        local_ref: str,
        size: int,
        md5: str,
        source: str,
    ) -> list[dict[str, Any]]:
        now = utcnow()
        return [
            {
                "route": route.name,
                "target": target.name,
                "file_key": file_key,
                "file_name": name,
                "local_ref": local_ref,
                "size": size,
                "md5": md5,
                "source": source,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for route in routes
            for target in route.targets
        ]

    async def on_published(self, event: Event) -> None:
        """Plan deliveries of a published product to every route whose trigger matches (duplicates are ignored)."""
        payload = event.payload
        wanted = [route for route in self.routes.values() if isinstance(route.trigger, PublishedTrigger)]
        if not wanted:
            return
        with self.engine.connect() as conn:
            product = conn.execute(
                select(Product.id, Product.name, Product.content_length, Product.storage_key, Checksum.value)
                .join(Checksum, and_(Checksum.product_id == Product.id, Checksum.algorithm == "MD5"))
                .where(Product.name == payload["ProductName"], Product.evicted_at.is_(None))
            ).one_or_none()
            if product is None:
                return  # evicted (or never committed): nothing to send
            attributes = {
                name: str(value)
                for name, value in conn.execute(
                    select(Attribute.name, Attribute.value_string).where(Attribute.product_id == product.id)
                )
            }
        product_type = str(payload.get("productType") or attributes.get("productType", ""))
        routes = [
            route
            for route in wanted
            if isinstance(route.trigger, PublishedTrigger)
            and matches(route.trigger, product.name, product_type, attributes)
        ]
        rows = self._delivery_rows(
            routes, f"product:{product.id}", product.name, f"storage:{product.storage_key}",
            product.content_length, product.value, "catalog",
        )  # fmt: skip
        self._plan(rows)

    async def route_item(self, pipeline: Pipeline, item: Item, worker: str) -> None:
        """The `routing` stage of a file of a routed source: plan, wait for the deliveries, finish."""
        file_key = f"item:{item.id}"
        with self.engine.connect() as conn:
            states = list(conn.execute(_FILE_DELIVERY_STATES, {"c_file": file_key}).scalars())
        if not states:
            staged = pipeline.staged(item)
            if staged.is_dir():
                raise Rejection("unroutable", "routing sends files; this entry is a folder")
            if not staged.exists():
                raise Retry(f"{staged} is missing", 1, count_attempt=False)
            md5 = (await asyncio.to_thread(file_digests, staged, ("MD5",)))["MD5"]
            key = routed_file_key(item)
            await self._share(staged, key)
            routes = self.by_source.get(item.source, [])
            self._plan(self._delivery_rows(routes, file_key, item.name, f"storage:{key}", staged.stat().st_size, md5,
                                           item.source))  # fmt: skip
            raise Retry("deliveries planned", self.settings.sweep_seconds, count_attempt=False)
        if "dead" in states:
            raise Retry("a delivery is dead-lettered: `auxip routes retry` puts it back", 60, count_attempt=False)
        if any(state != "delivered" for state in states):
            # Made due again by the last delivery to land (`_finish_file_if_done`); the delay is only a fallback.
            raise Retry("deliveries in progress", 5, count_attempt=False)
        await self._post_delivery(item)
        await self.storage.delete(routed_file_key(item))
        advance(self.engine, item, worker, "routed", {"deliveries": len(states)})
        shutil.rmtree(pipeline.item_dir(item), ignore_errors=True)

    async def _share(self, staged: Path, key: str) -> None:
        """Put a routed file where every process delivering it can read it: the object store. A link when the
        store is a directory on the staging filesystem (nothing copied), an upload otherwise."""
        local = self.storage.local_path(key)
        if local is not None and same_filesystem(staged, local):
            await asyncio.to_thread(link_into_place, staged, local)
        else:
            await self.storage.put_file(key, staged)

    async def _post_delivery(self, item: Item) -> None:
        """Only once every target has the file: the route's action at the source (the strictest one wins)."""
        actions = {route.post_delivery.action: route.post_delivery for route in self.by_source.get(item.source, [])}
        if not actions:
            return
        source = self.pipeline.sources[item.source]
        if not isinstance(source, PostDeliverySource):
            # The configuration refuses post-delivery actions on such sources (POST_DELIVERY_SCHEMES).
            raise TypeError(f"source {item.source!r} cannot delete or move files")
        entry = RemoteFile(item.path, item.name, item.size, None, item.version, None, item.is_dir, item.origin_date)
        if "delete" in actions:
            await source.remove(entry)
        elif "move" in actions:
            folder = actions["move"].move_to
            assert folder is not None  # PostDelivery requires it with action: move
            await source.move(entry, folder)

    # --- delivering --------------------------------------------------------------------------------------------------

    def _circuit_open(self, key: str) -> bool:
        with self.engine.connect() as conn:
            until = conn.execute(_CIRCUIT_OPEN_UNTIL, {"c_target": key}).scalar_one_or_none()
        return until is not None and until > utcnow()

    def _record_failure(self, key: str, error: str) -> None:
        with self.engine.begin() as conn:
            failures = conn.execute(
                select(TargetState.consecutive_failures).where(TargetState.target == key)
            ).scalar_one_or_none()
            if failures is None:
                conn.execute(insert(TargetState), [{"target": key, "consecutive_failures": 0}])
                failures = 0
            failures += 1
            values: dict[str, Any] = {"consecutive_failures": failures, "last_error": error}
            threshold = self.settings.circuit_threshold
            if failures >= threshold:
                # Doubling per `threshold` further failures, not per failure: parallel uploads fail together.
                seconds = min(self.settings.circuit_open_seconds * 2 ** ((failures - threshold) // threshold), 3600)
                values["open_until"] = utcnow() + timedelta(seconds=seconds)
            conn.execute(update(TargetState).where(TargetState.target == key).values(**values))

    @contextlib.asynccontextmanager
    async def _bytes_of(self, local_ref: str) -> Any:
        """A local file holding the delivery's bytes: the staged file, or the stored product (downloaded if remote)."""
        if not local_ref.startswith("storage:"):
            yield Path(local_ref)
            return
        key = local_ref.removeprefix("storage:")
        local = self.storage.local_path(key)
        if local is not None:
            yield local
            return
        with tempfile.TemporaryDirectory(dir=self.pipeline.staging_dir) as scratch:
            path = Path(scratch) / "object"
            with path.open("wb") as out:
                async for chunk in self.storage.read(key):
                    out.write(chunk)
            yield path

    async def _deliver(self, delivery: Any, worker: str) -> None:
        route = self.routes[delivery.route]
        key = _target_key(delivery.route, delivery.target)
        started = utcnow()
        result = "delivered"
        location = None
        try:
            async with self._bytes_of(delivery.local_ref) as path:
                delivered = await self.adapter(delivery.route, delivery.target).deliver(
                    path, delivery.file_name, delivery.md5
                )
            location = delivered.location
            faults.point("deliver.after")
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
        ended = utcnow()
        attempts = delivery.attempts + 1
        attempt = {
            "delivery_id": delivery.id,
            "file_name": delivery.file_name,
            "md5": delivery.md5,
            "source": delivery.source,
            "target": key,
            "started_at": started,
            "ended_at": ended,
            "bytes": delivery.size if location else 0,
            "result": result[:4000],
        }
        values: dict[str, Any] = {"attempts": attempts, "claimed_by": None, "last_error": None if location else result}
        if location is not None:
            values |= {"state": "delivered", "delivered_at": ended, "location": location}
        elif attempts >= route.max_attempts:
            values["state"] = "dead"
            log.warning("dead-lettered", extra={"delivery": delivery.id, "target": key, "error": result})
        else:
            policy = RetryPolicy(
                base_delay=timedelta(seconds=route.retry_base_seconds),
                max_delay=timedelta(seconds=route.retry_max_seconds),
            )
            values["next_attempt_at"] = ended + policy.delay(attempts)
        params = {"c_id": delivery.id, "c_worker": worker, **{f"v_{name}": value for name, value in values.items()}}
        with self.engine.begin() as conn:
            conn.execute(_INSERT_ATTEMPT, [attempt])
            conn.execute(_delivery_outcome(frozenset(values)), params)
            finished = False
            if location is not None:
                # A success closes the target's circuit; the conditional UPDATE writes nothing while it is closed.
                conn.execute(_TARGET_SUCCEEDED, {"c_target": key})
                if delivery.file_key.startswith("item:"):
                    item_id = int(delivery.file_key.removeprefix("item:"))
                    finished = self._finish_file_if_done(conn, item_id, delivery.file_key)
        if location is None:
            self._record_failure(key, result)
        if finished:
            self.on_file_delivered()

    def _finish_file_if_done(self, conn: Connection, item_id: int, file_key: str) -> bool:
        """The last delivery of a routed file landed: make its `routing` stage due now instead of at its next poll."""
        if conn.execute(_UNDELIVERED_OF_FILE, {"c_file": file_key}).scalar_one():
            return False
        conn.execute(_ROUTED_ITEM_DUE, {"c_id": item_id, "c_now": utcnow()})
        return True

    async def _target_loop(self, route: str, target: TargetSettings, stop: asyncio.Event) -> None:
        key = _target_key(route, target.name)
        worker = worker_id(f"deliver-{key}")
        wake = self._wakes.setdefault(key, asyncio.Event())
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            wake.set()

        while not stop.is_set():
            wake.clear()
            free = target.concurrency - len(running)
            claimed: list[Any] = []
            if free > 0 and not self._circuit_open(key):
                now = utcnow()
                params = {"c_route": route, "c_target": target.name, "c_now": now}
                params |= {"c_worker": worker, "c_until": now + self.settings.lease, "c_limit": free}
                with self.engine.begin() as conn:
                    claimed = list(conn.execute(_claim_deliveries(self.engine.dialect.name), params))
            for delivery in claimed:
                task = asyncio.create_task(self._deliver(delivery, worker))
                running.add(task)
                task.add_done_callback(finished)
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.settings.sweep_seconds)
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        # Downloads of stored products land there; a process of the `route` role alone never fetched anything.
        self.pipeline.staging_dir.mkdir(parents=True, exist_ok=True)
        tasks = [
            asyncio.create_task(self._target_loop(route.name, target, stop))
            for route in self.routes.values()
            for target in route.targets
        ]
        if any(isinstance(route.trigger, PublishedTrigger) for route in self.routes.values()):
            tasks.append(asyncio.create_task(self.bus.consume(PRODUCT_PUBLISHED, "routing", self.on_published, stop)))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()


# --- operator views ------------------------------------------------------------------------------------------------


def list_deliveries(engine: Engine, state: str | None = None) -> list[dict[str, Any]]:
    query = select(
        RouteDelivery.id,
        RouteDelivery.route,
        RouteDelivery.target,
        RouteDelivery.file_name,
        RouteDelivery.state,
        RouteDelivery.attempts,
        RouteDelivery.last_error,
        RouteDelivery.delivered_at,
        RouteDelivery.location,
    ).order_by(RouteDelivery.id)
    if state is not None:
        query = query.where(RouteDelivery.state == state)
    with engine.connect() as conn:
        return [
            {key: (value.isoformat() if isinstance(value, datetime) else value) for key, value in row._mapping.items()}
            for row in conn.execute(query)
        ]


def retry_dead(engine: Engine, ids: Sequence[int] | None = None) -> int:
    """Put dead-lettered deliveries (all, or those `ids`) back to pending with a fresh attempt budget."""
    condition = RouteDelivery.state == "dead"
    if ids:
        condition = and_(condition, RouteDelivery.id.in_(ids))
    with engine.begin() as conn:
        result = conn.execute(
            update(RouteDelivery).where(condition).values(state="pending", attempts=0, next_attempt_at=utcnow())
        )
    return int(result.rowcount)


def delivery_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(RouteDelivery.state, func.count()).group_by(RouteDelivery.state))
        return {state: int(count) for state, count in rows}

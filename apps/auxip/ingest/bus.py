"""The event bus between the pipeline and its consumers (`product.published`, `product.quarantined`).

Two implementations of one protocol:
- `DatabaseBus` (embedded default): an append-only `bus_event` log in the catalog database and a committed offset per
  consumer group. `publish` can join the caller's transaction, so "item announced" and "event written" commit together:
  exactly one event per publication, even across a crash.
- `KafkaBus` (production): idempotent producer with acks=all, keys by product name (so one product's events stay in
  order on one partition), consumer groups that commit an offset only after the handler returned: at-least-once,
  and consumers dedupe by product Id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, insert, select, update

from auxip.ingest.models import BusEvent, BusOffset
from auxip.ingest.settings import BusSettings, KafkaTls
from auxip.ingest.state import utcnow

PRODUCT_PUBLISHED = "product.published"
PRODUCT_QUARANTINED = "product.quarantined"


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    key: str
    payload: Mapping[str, Any]
    offset: int


Handler = Callable[[Event], Awaitable[None]]


class EventBus(Protocol):
    async def publish(
        self, topic: str, key: str, payload: Mapping[str, Any], connection: Connection | None = None
    ) -> None:
        """Append an event; with `connection` (database bus only) inside the caller's transaction."""
        ...

    async def consume(self, topic: str, group: str, handler: Handler, stop: asyncio.Event) -> None:
        """Call `handler` for every event of `topic` not yet acknowledged by `group`, until `stop` is set."""
        ...

    @property
    def joins_transactions(self) -> bool: ...

    async def close(self) -> None: ...


class DatabaseBus:
    joins_transactions = True

    def __init__(self, engine: Engine, poll_interval: float = 0.5) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self._appended = asyncio.Event()

    async def publish(
        self, topic: str, key: str, payload: Mapping[str, Any], connection: Connection | None = None
    ) -> None:
        row = {"topic": topic, "key": key, "payload": json.dumps(payload, default=str), "created_at": utcnow()}
        if connection is not None:
            connection.execute(insert(BusEvent), [row])
        else:
            with self.engine.begin() as conn:
                conn.execute(insert(BusEvent), [row])
        self._appended.set()

    def _position(self, conn: Connection, topic: str, group: str) -> int:
        position = conn.execute(
            select(BusOffset.position).where(BusOffset.consumer_group == group, BusOffset.topic == topic)
        ).scalar_one_or_none()
        if position is None:
            conn.execute(insert(BusOffset), [{"consumer_group": group, "topic": topic, "position": 0}])
            return 0
        return int(position)

    def _batch(self, topic: str, group: str, limit: int = 500) -> list[Event]:
        with self.engine.begin() as conn:
            position = self._position(conn, topic, group)
            rows = conn.execute(
                select(BusEvent.id, BusEvent.key, BusEvent.payload)
                .where(BusEvent.topic == topic, BusEvent.id > position)
                .order_by(BusEvent.id)
                .limit(limit)
            )
            return [Event(topic, key, json.loads(payload), offset) for offset, key, payload in rows]

    def _commit(self, topic: str, group: str, offset: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(BusOffset)
                .where(BusOffset.consumer_group == group, BusOffset.topic == topic)
                .values(position=offset)
            )

    async def consume(self, topic: str, group: str, handler: Handler, stop: asyncio.Event) -> None:
        while not stop.is_set():
            events = await asyncio.to_thread(self._batch, topic, group)
            for event in events:
                await handler(event)
                await asyncio.to_thread(self._commit, topic, group, event.offset)
            if not events:
                self._appended.clear()
                waiters = [asyncio.ensure_future(self._appended.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()

    async def close(self) -> None:
        return None


class KafkaBus:
    joins_transactions = False

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str = "auxip",
        topic_prefix: str = "auxip.",
        tls: KafkaTls | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.topic_prefix = topic_prefix
        self.tls = tls
        self._producer_instance: Any = None

    def client_config(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What every producer and consumer of this bus is configured with (brokers, TLS), plus `extra`."""
        config = {"bootstrap.servers": self.bootstrap_servers, "client.id": self.client_id}
        return config | (self.tls.client_config() if self.tls else {}) | dict(extra or {})

    def group_id(self, group: str) -> str:
        # Under the deployment's prefix, like its topics: two deployments on one Kafka never share a group.
        return self.topic_prefix + group

    @property
    def _producer(self) -> Any:
        # Made at the first event: a process that only consumes (or evicts) never opens a producer.
        if self._producer_instance is None:
            from confluent_kafka import Producer

            settings = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
            self._producer_instance = Producer(self.client_config(settings))
        return self._producer_instance

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        self._producer.produce(self.topic_prefix + topic, key=key.encode(), value=value, on_delivery=delivered)
        remaining = self._producer.flush(30)
        if remaining or failures:
            raise ConnectionError(f"Kafka did not acknowledge the {topic} event for {key}: {failures or 'timeout'}")

    async def publish(
        self, topic: str, key: str, payload: Mapping[str, Any], connection: Connection | None = None
    ) -> None:
        await asyncio.to_thread(self._produce, topic, key, json.dumps(payload, default=str).encode())

    async def consume(self, topic: str, group: str, handler: Handler, stop: asyncio.Event) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            self.client_config(
                {"group.id": self.group_id(group), "enable.auto.commit": False, "auto.offset.reset": "earliest"}
            )
        )
        consumer.subscribe([self.topic_prefix + topic])
        try:
            while not stop.is_set():
                message = await asyncio.to_thread(consumer.poll, 0.5)
                if message is None or message.error():
                    continue
                key = (message.key() or b"").decode()
                event = Event(topic, key, json.loads(message.value() or b"{}"), message.offset() or 0)
                await handler(event)
                await asyncio.to_thread(consumer.commit, message=message, asynchronous=False)
        finally:
            await asyncio.to_thread(consumer.close)

    async def close(self) -> None:
        if self._producer_instance is not None:
            await asyncio.to_thread(self._producer_instance.flush, 10)


def open_bus(settings: BusSettings, engine: Engine) -> EventBus:
    """`bus.url`: `embedded` (the database log) or `kafka://host:port[,host:port]` (with `bus.tls` over TLS)."""
    if settings.url == "embedded":
        return DatabaseBus(engine)
    parts = urlsplit(settings.url)
    if parts.scheme == "kafka" and parts.netloc:
        servers = parts.netloc + ("," + parts.path.strip("/") if parts.path.strip("/") else "")
        return KafkaBus(servers, topic_prefix=settings.topic_prefix, tls=settings.tls)
    raise ValueError(f"bus.url {settings.url!r}: use 'embedded' or kafka://host:port")

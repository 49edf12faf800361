"""Read a Kafka topic back in tests: every record between two positions, with its key and JSON payload.

The session shares one broker and the app's topic names are fixed (`auxip.product.published`), so a test takes the
topic's `end_offsets` before it starts producers and reads only what came after: events of other tests stay out.
Partitions are assigned directly (no consumer group), so reading commits nothing and can be repeated.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

#: Where each partition of a topic stands: partition -> next offset.
Positions = Mapping[int, int]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    partition: int
    offset: int
    key: str
    payload: dict[str, Any]


def _consumer(bootstrap_servers: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"auxip-test-reader-{uuid.uuid4().hex[:8]}",  # required by librdkafka, never committed
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
        }
    )


def _partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []  # not created yet: nobody has produced to it
    return sorted(metadata.partitions)


def end_offsets(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """The high watermark of every partition of `topic` (empty when the topic does not exist yet)."""
    consumer = _consumer(bootstrap_servers)
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)[1]
            for partition in _partitions(consumer, topic, timeout)
        }
    finally:
        consumer.close()


def read_topic(
    bootstrap_servers: str, topic: str, since: Positions | None = None, timeout: float = 20.0
) -> list[KafkaRecord]:
    """Every record of `topic` from `since` (default: the beginning) up to the end as it stands now."""
    consumer = _consumer(bootstrap_servers)
    try:
        start = dict(since or {})
        ends = {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)[1]
            for partition in _partitions(consumer, topic, timeout)
        }
        pending = {partition: end for partition, end in ends.items() if end > start.get(partition, 0)}
        if not pending:
            return []
        consumer.assign([TopicPartition(topic, partition, start.get(partition, 0)) for partition in pending])
        records: list[KafkaRecord] = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: records up to {pending} not read within {timeout} s")
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"reading {topic}: {error}")
            # A consumed message (not an error event) always has both.
            partition, offset = message.partition() or 0, message.offset() or 0
            records.append(
                KafkaRecord(partition, offset, (message.key() or b"").decode(), json.loads(message.value() or b"{}"))
            )
            if partition in pending and offset + 1 >= pending[partition]:
                del pending[partition]
        return sorted(records, key=lambda record: (record.partition, record.offset))
    finally:
        consumer.close()

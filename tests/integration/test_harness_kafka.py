"""The Kafka fixture gives a real single-node KRaft broker: topics, partitions, produce and consume round-trip."""

from __future__ import annotations

import secrets
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 3
MESSAGES = 60


def _unique_topic() -> str:
    # One broker serves the whole session: tests must not share topic names.
    return f"auxip-harness-{secrets.token_hex(4)}"


def _create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=30)  # raises KafkaException if the broker refused


def _produce(bootstrap_servers: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True})
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert errors == []


def _consume_all(bootstrap_servers: str, topic: str, expected: int, timeout: float = 30.0) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"auxip-harness-{secrets.token_hex(4)}",  # a fresh group has no committed offsets
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append(message)
    finally:
        consumer.close()
    return received


def test_topic_has_the_requested_partition_count(kafka: str) -> None:
    topic = _unique_topic()
    _create_topic(kafka, topic, PARTITIONS)
    metadata = AdminClient({"bootstrap.servers": kafka}).list_topics(topic, timeout=10)
    assert topic in metadata.topics
    assert metadata.topics[topic].error is None
    assert sorted(metadata.topics[topic].partitions) == list(range(PARTITIONS))
    assert {partition.leader for partition in metadata.topics[topic].partitions.values()} == {1}


def test_keyed_messages_round_trip(kafka: str) -> None:
    topic = _unique_topic()
    _create_topic(kafka, topic, PARTITIONS)
    records = [
        (f"S1A_AUX_{i % 7:02d}".encode(), f"product-{i}:{secrets.token_hex(8)}".encode()) for i in range(MESSAGES)
    ]
    _produce(kafka, topic, records)

    received = _consume_all(kafka, topic, MESSAGES)

    assert sorted((m.key(), m.value()) for m in received) == sorted(records)
    # The default partitioner hashes keys: equal keys land in one partition, and several partitions get data.
    partitions_by_key: dict[bytes | None, set[int]] = {}
    for message in received:
        partitions_by_key.setdefault(message.key(), set()).add(message.partition())
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())
    assert len({m.partition() for m in received}) > 1
    # Within one key (so one partition), consumption order is production order.
    for key in partitions_by_key:
        assert [m.value() for m in received if m.key() == key] == [v for k, v in records if k == key]


def test_bootstrap_servers_is_loopback(kafka: str) -> None:
    host, port = kafka.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert 0 < int(port) < 65536

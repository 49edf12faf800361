"""The AUXIP on the Strimzi Kafka: its topics (`<prefix><event>`) and its client, a KafkaUser with mutual TLS and
ACLs on exactly the AUXIP's topics and consumer groups.

The KafkaTopics go where the Topic Operator watches (the Kafka cluster's namespace). The KafkaUser goes into the
AUXIP namespace, which the User Operator watches (`platform/services/kafka.py`): its Secret (`user.crt`,
`user.key`) then appears next to the pods that mount it, since a pod can only mount Secrets of its own namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from auxip.deploy.context import KafkaCluster
from auxip.ingest.bus import PRODUCT_PUBLISHED, PRODUCT_QUARANTINED

API = "kafka.strimzi.io/v1"
#: The events the AUXIP puts on the bus (`auxip.ingest.bus`): one topic `<prefix><event>` each.
EVENTS = (PRODUCT_PUBLISHED, PRODUCT_QUARANTINED)
#: The consumer groups the AUXIP reads with (`auxip.routing.engine`: `product.published` in group `routing`); the
#: bus names them `<prefix><group>` on Kafka (`KafkaBus.group_id`), so the topic prefix grants them.
CONSUMER_GROUPS = ("routing",)
#: The KafkaUser, and so the Secret holding its certificate and key.
KAFKA_USER = "auxip-kafka-client"


@dataclass(frozen=True)
class KafkaAccessArgs:
    kafka: KafkaCluster
    #: Where the User Operator writes the user's Secret: the AUXIP namespace.
    namespace: str


def topic_name(kafka: KafkaCluster, event: str) -> str:
    return f"{kafka.topic_prefix}{event}"


def acls(kafka: KafkaCluster) -> list[dict[str, Any]]:
    """Read and write on the topics of the AUXIP's prefix, and reading with its consumer groups: nothing else (no
    cluster operation, no topic creation: the topics are KafkaTopics)."""
    topics = {
        "resource": {"type": "topic", "name": kafka.topic_prefix, "patternType": "prefix"},
        "operations": ["Describe", "Read", "Write"],
    }
    groups = {
        "resource": {"type": "group", "name": kafka.topic_prefix, "patternType": "prefix"},
        "operations": ["Describe", "Read"],
    }
    return [topics, groups]


class KafkaAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: KafkaAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:KafkaAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kafka = args.kafka
        cluster = {"strimzi.io/cluster": kafka.name, "app.kubernetes.io/part-of": "auxip"}
        self.topics = [
            k8s.apiextensions.CustomResource(
                f"auxip-topic-{event}",
                api_version=API,
                kind="KafkaTopic",
                metadata={
                    # A resource name cannot hold dots or underscores; the topic's own name is `topicName`.
                    "name": topic_name(kafka, event).replace("_", "-").replace(".", "-"),
                    "namespace": kafka.namespace,
                    "labels": cluster,
                },
                spec={
                    "topicName": topic_name(kafka, event),
                    "partitions": kafka.partitions,
                    "replicas": kafka.replicas,
                    "config": {
                        "retention.ms": kafka.retention_hours * 3_600_000,
                        "min.insync.replicas": kafka.min_insync_replicas,
                        "cleanup.policy": "delete",
                    },
                },
                opts=child,
            )
            for event in EVENTS
        ]
        self.user = k8s.apiextensions.CustomResource(
            KAFKA_USER,
            api_version=API,
            kind="KafkaUser",
            metadata={"name": KAFKA_USER, "namespace": args.namespace, "labels": cluster},
            spec={"authentication": {"type": "tls"}, "authorization": {"type": "simple", "acls": acls(kafka)}},
            opts=child,
        )
        self.register_outputs(
            {"topics": [topic_name(kafka, event) for event in EVENTS], "user": KAFKA_USER, "secret": KAFKA_USER}
        )

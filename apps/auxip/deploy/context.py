"""What the AUXIP deployment takes from the rest of the stack: the Kafka cluster, the catalog cluster, the products
bucket and the ingest worker pool. Plain data, computed once from the stack configuration (`cluster_context`), so
that the deploy modules type-check without seeing `auxip_platform` and tests can build it by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auxip_platform.infra.stack_config import StackConfig  # type: ignore[import-not-found]

#: The label a worker pool for ingestion carries (Pulumi.prod.yaml: `workerPools[].labels`).
POOL_LABEL = "auxip.esa.int/pool"
INGEST_POOL = "ingest"


@dataclass(frozen=True)
class KafkaCluster:
    """The Strimzi cluster the AUXIP's events go through (`clusterServices.kafka`)."""

    name: str
    namespace: str
    bootstrap: str
    topic_prefix: str
    partitions: int
    replicas: int
    min_insync_replicas: int
    retention_hours: int
    #: The egress rule to the brokers' TLS listener, as the Kafka component states it.
    egress: dict[str, Any]


@dataclass(frozen=True)
class NodePool:
    """A worker pool: the labels to prefer it by and the taints to tolerate."""

    labels: dict[str, str]
    taints: tuple[str, ...]


@dataclass(frozen=True)
class ClusterContext:
    kafka: KafkaCluster | None = None
    #: The egress rule to the catalog cluster's instances (5432), as the PostgreSQL component states it.
    catalog_egress: dict[str, Any] | None = None
    #: The infra layer's bucket of purpose `products`.
    products_bucket: str | None = None
    ingest_pool: NodePool | None = None


def _ingest_pool(config: StackConfig) -> NodePool | None:
    infra = config.infra
    if infra is None:
        return None
    pools = infra.openstack.worker_pools if infra.openstack is not None else infra.existing_hosts
    for pool in pools:
        if pool.labels.get(POOL_LABEL) == INGEST_POOL:
            return NodePool(labels={POOL_LABEL: INGEST_POOL}, taints=tuple(pool.taints))
    return None


def cluster_context(config: StackConfig) -> ClusterContext:
    """The context of `config`'s stack (imports the platform modules only when called: they import this package's
    configuration models)."""
    from auxip_platform.platform.services import kafka, postgres  # type: ignore[import-not-found]
    from auxip_platform.platform.system_namespaces import KAFKA  # type: ignore[import-not-found]

    services = config.cluster_services
    bus = None
    if services.kafka.enabled:
        k = services.kafka
        bus = KafkaCluster(
            name=k.name,
            namespace=KAFKA,
            bootstrap=f"{k.name}-kafka-bootstrap.{KAFKA}.svc:{kafka.TLS_PORT}",
            topic_prefix=k.topic_prefix,
            partitions=k.partitions,
            replicas=k.replication_factor,
            min_insync_replicas=k.min_insync_replicas,
            retention_hours=k.retention_hours,
            egress=kafka.client_egress_rule(k),
        )
    catalog = services.postgres
    buckets = config.infra.openstack.buckets if config.infra and config.infra.openstack else []
    return ClusterContext(
        kafka=bus,
        catalog_egress=postgres.client_egress_rule(catalog) if catalog is not None else None,
        products_bucket=next((b.name for b in buckets if b.purpose == "products"), None),
        ingest_pool=_ingest_pool(config),
    )

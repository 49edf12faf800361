"""The `clusterServices` section of the stack configuration: which services run, their sizes and their endpoints.

Versions are not configuration: they are pinned in `versions.py` and change with a reviewed commit. Everything here
has a default that deploys a working set of services except the PostgreSQL cluster, which needs a backup bucket
(stack specific), so it is created only when `clusterServices.postgres` is written out.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from auxip.validation import require_unique

if TYPE_CHECKING:
    from auxip_platform.infra.stack_config import StackConfig

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: A Kubernetes quantity of bytes as we write them (binary units only, so sizes compare at a glance).
STORAGE_SIZE = r"^[1-9][0-9]*(Mi|Gi|Ti)$"
#: The namespaces whose pods use the bus and the catalog (the AUXIP's own).
AUXIP_NAMESPACES = ["auxip", "auxip-ingest", "auxip-routing"]


class ServicesModel(BaseModel):
    # Same conventions as StackConfig (kept local so that this module does not import its parent model).
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class CalicoConfig(ServicesModel):
    enabled: bool = True
    #: The pod network (Calico's default IP pool); must not overlap the nodes' or the services' networks.
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.0.0/16")
    #: VXLAN between subnets only: OpenStack networks drop IP-in-IP (protocol 4) unless port security allows it.
    encapsulation: Literal["VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet", "None"] = "VXLANCrossSubnet"


class CertManagerConfig(ServicesModel):
    enabled: bool = True
    ca_common_name: str = "AUXIP internal CA"
    #: Lifetime of the internal root; cert-manager renews it `caRenewBefore` ahead (Go durations, hours).
    ca_duration: str = Field(default="87600h", pattern=r"^[1-9][0-9]*h$")
    ca_renew_before: str = Field(default="720h", pattern=r"^[1-9][0-9]*h$")


class KongConfig(ServicesModel):
    enabled: bool = True
    replicas: int = Field(default=2, ge=1, le=20)
    ingress_class: str = Field(default="kong", pattern=DNS_LABEL)
    proxy_service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    #: Per client IP, on every route of the class (KongClusterPlugin `auxip-rate-limit`); 0 disables it.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    #: The backends the gateway forwards to (egress from the proxy pods); the AUXIP's and hosted applications'.
    upstream_namespaces: list[str] = Field(default_factory=lambda: list(AUXIP_NAMESPACES))


class KafkaConfig(ServicesModel):
    enabled: bool = True
    name: str = Field(default="auxip", pattern=DNS_LABEL)
    controllers: int = Field(default=3, ge=1, le=9)
    brokers: int = Field(default=3, ge=1, le=30)
    storage_size: str = Field(default="100Gi", pattern=STORAGE_SIZE)
    storage_class: str = Field(default="auxip-retain", pattern=DNS_LABEL)
    controller_storage_size: str = Field(default="10Gi", pattern=STORAGE_SIZE)
    #: Namespaces whose pods may reach the brokers' TLS listener (9093); nothing else may.
    client_namespaces: list[str] = Field(default_factory=lambda: list(AUXIP_NAMESPACES))
    #: The AUXIP's `bus.topic_prefix`: topics are `<prefix><event>`.
    topic_prefix: str = Field(default="auxip.", pattern=r"^[a-z0-9._-]*$")
    partitions: int = Field(default=6, ge=1, le=1000)
    retention_hours: int = Field(default=168, ge=1)

    @field_validator("controllers")
    @classmethod
    def _odd_quorum(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd: a KRaft quorum of an even size tolerates no more failures than one less")
        return value

    @property
    def replication_factor(self) -> int:
        return min(3, self.brokers)

    @property
    def min_insync_replicas(self) -> int:
        return max(1, self.replication_factor - 1)


class BackupConfig(ServicesModel):
    """Barman Cloud backups (base backups and WAL) of the catalog cluster to an S3-compatible bucket."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(default="cnpg", pattern=r"^[A-Za-z0-9._/-]+$")
    endpoint_url: str = Field(pattern=r"^https://[^\s/]+(/\S*)?$")
    #: The endpoint's addresses, for the egress NetworkPolicy (a DNS name cannot be used in one).
    cidr: ipaddress.IPv4Network
    #: A Secret in the cluster's namespace with keys ACCESS_KEY_ID and ACCESS_SECRET_KEY (created out of band, from
    #: Vault): only its name is configuration, the keys never are.
    credentials_secret_name: str = Field(default="catalog-backup-s3", pattern=DNS_LABEL)
    retention: str = Field(default="30d", pattern=r"^[1-9][0-9]*[dwm]$")
    #: Six-field cron (seconds first), as CloudNativePG's ScheduledBackup takes it.
    schedule: str = "0 0 2 * * *"

    @field_validator("cidr")
    @classmethod
    def _not_world(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if value.prefixlen == 0:
            raise ValueError("0.0.0.0/0 is not allowed here: name the object storage endpoint's network")
        return value

    @field_validator("schedule")
    @classmethod
    def _six_fields(cls, value: str) -> str:
        if len(value.split()) != 6:
            raise ValueError("six fields (seconds minutes hours day month weekday), e.g. '0 0 2 * * *'")
        return value

    @property
    def port(self) -> int:
        match = re.match(r"^https://[^/]+:(\d+)", self.endpoint_url)
        return int(match.group(1)) if match else 443


class PostgresConfig(ServicesModel):
    """The AUXIP catalog: a CloudNativePG cluster in a namespace of its own (declared in kubernetes.namespaces), so
    that its policies (replication, backups to object storage, the API server) open nothing for the AUXIP's pods."""

    name: str = Field(default="auxip-catalog", pattern=DNS_LABEL)
    namespace: str = Field(default="auxip-catalog", pattern=DNS_LABEL)
    instances: int = Field(default=3, ge=1, le=9)
    storage_size: str = Field(default="50Gi", pattern=STORAGE_SIZE)
    storage_class: str = Field(default="auxip-retain", pattern=DNS_LABEL)
    database: str = Field(default="auxip", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    owner: str = Field(default="auxip", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    #: Namespaces whose pods may open connections to the cluster (5432).
    client_namespaces: list[str] = Field(default_factory=lambda: list(AUXIP_NAMESPACES))
    backup: BackupConfig


class CloudNativePgConfig(ServicesModel):
    enabled: bool = True


class StorageClassConfig(ServicesModel):
    name: str = Field(pattern=DNS_LABEL)
    provisioner: str = Field(default="cinder.csi.openstack.org", pattern=r"^[a-z0-9.-]+$")
    parameters: dict[str, str] = Field(default_factory=dict)
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    default: bool = False
    allow_volume_expansion: bool = True


def _default_storage_classes() -> list[StorageClassConfig]:
    return [
        StorageClassConfig(name="auxip-standard", default=True),
        # Kafka logs and the catalog: a deleted claim must not take the data with it.
        StorageClassConfig(name="auxip-retain", reclaim_policy="Retain"),
    ]


class StorageConfig(ServicesModel):
    classes: list[StorageClassConfig] = Field(default_factory=_default_storage_classes)

    @field_validator("classes")
    @classmethod
    def _one_default(cls, value: list[StorageClassConfig]) -> list[StorageClassConfig]:
        require_unique([c.name for c in value], "storage class names")
        defaults = [c.name for c in value if c.default]
        if len(defaults) != 1:
            raise ValueError(f"exactly one class must be the default, got {defaults or 'none'}")
        return value


class RegistryMirrorConfig(ServicesModel):
    """Harbor as the pull-through mirror: what the nodes' containerd is told (exported for the Ansible role).

    Images this stack deploys are rewritten to `registryPrefix` already; the mirror entries catch what is not
    rewritten (images an operator or a user names by their upstream reference) so that no node pulls from outside.
    """

    #: Harbor's URL; default `https://<host of registryPrefix>`.
    endpoint: str | None = Field(default=None, pattern=r"^https://[^\s/]+$")
    #: Upstream registry → Harbor proxy-cache project.
    proxy_cache_projects: dict[str, str] = Field(
        default_factory=lambda: {
            "docker.io": "dockerhub-proxy",
            "quay.io": "quay-proxy",
            "ghcr.io": "ghcr-proxy",
            "registry.k8s.io": "k8s-proxy",
        }
    )


class ClusterServicesConfig(ServicesModel):
    #: An internal chart mirror used for every chart instead of the upstream repositories: an HTTP(S) Helm
    #: repository, or `oci://host/project` (charts then are `<base>/<chart>`).
    chart_repository: str | None = Field(default=None, pattern=r"^(https|oci)://\S+$")
    #: Where the API server is (egress from operators, webhooks called by it); default: the infra layer's nodes
    #: network (OpenStack) or its control-plane hosts (existing hosts).
    api_server_cidrs: list[ipaddress.IPv4Network] = Field(default_factory=list)
    api_server_port: int = Field(default=6443, ge=1, le=65535)
    calico: CalicoConfig = CalicoConfig()
    cert_manager: CertManagerConfig = CertManagerConfig()
    kong: KongConfig = KongConfig()
    kafka: KafkaConfig = KafkaConfig()
    cloudnative_pg: CloudNativePgConfig = CloudNativePgConfig()
    postgres: PostgresConfig | None = None
    storage: StorageConfig = StorageConfig()
    registry_mirror: RegistryMirrorConfig = RegistryMirrorConfig()

    @model_validator(mode="after")
    def _references(self) -> ClusterServicesConfig:
        classes = {c.name for c in self.storage.classes}
        used = [("kafka.storageClass", self.kafka.storage_class)]
        if self.postgres is not None:
            used.append(("postgres.storageClass", self.postgres.storage_class))
            if not self.cloudnative_pg.enabled:
                raise ValueError("postgres needs the CloudNativePG operator: set cloudnativePg.enabled true")
        for key, name in used:
            if name not in classes:
                raise ValueError(f"{key}: {name!r} is not one of storage.classes ({', '.join(sorted(classes))})")
        return self


def api_server_cidrs(config: StackConfig) -> list[ipaddress.IPv4Network]:
    """The networks the API server answers from and calls webhooks from, most specific source first."""
    services = config.cluster_services
    if services.api_server_cidrs:
        return list(services.api_server_cidrs)
    infra = config.infra
    if infra is not None and infra.openstack is not None:
        return [infra.openstack.network.nodes_cidr]
    if infra is not None:
        hosts = [h for h in infra.existing_hosts if h.role == "control-plane"]
        return [ipaddress.IPv4Network(f"{h.address}/32") for h in hosts]
    return []


def registry_mirror_endpoint(config: ClusterServicesConfig, registry_prefix: str) -> str:
    return config.registry_mirror.endpoint or f"https://{registry_prefix.split('/', 1)[0]}"

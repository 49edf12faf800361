"""PostgreSQL: the CloudNativePG operator (`cnpg-system`) and the AUXIP catalog cluster in the AUXIP's namespace.

Backups (base backups and WAL archiving with Barman Cloud) go to the stack's object storage; the S3 credentials are
a Secret reference, created out of band from Vault, never a value in the stack. A ScheduledBackup takes a base
backup every night; WAL is archived continuously, so the recovery point is the last archived segment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from auxip_platform.platform.priority import WORKLOAD_HIGH
from auxip_platform.platform.services.common import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    ChartSource,
    api_server_egress,
    custom_resource,
    helm_release,
    ip_peers,
    namespaces_peer,
    network_policy,
    resources,
    tcp,
    webhook_ingress,
)
from auxip_platform.platform.services.config import PostgresConfig
from auxip_platform.platform.services.versions import CNPG_VERSION, IMAGES, image_ref
from auxip_platform.platform.system_namespaces import CNPG_SYSTEM, SYSTEM_NAMESPACES

API = "postgresql.cnpg.io/v1"
POSTGRES_PORT = 5432
#: The instance manager's status endpoint: the operator and the other instances poll it.
STATUS_PORT = 8000
WEBHOOK_PORT = 9443
OPERATOR_LABELS = {"app.kubernetes.io/name": "cloudnative-pg"}
#: Keys of the backup credentials Secret.
ACCESS_KEY_FIELD = "ACCESS_KEY_ID"
SECRET_KEY_FIELD = "ACCESS_SECRET_KEY"  # noqa: S105 (the key name in the Secret)


@dataclass(frozen=True)
class CloudNativePgArgs:
    registry_prefix: str
    charts: ChartSource
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    api_server_port: int
    pod_cidr: ipaddress.IPv4Network
    #: Namespaces where clusters live (the operator polls their instances).
    cluster_namespaces: Sequence[str]


def operator_values(registry_prefix: str) -> dict:
    repository, _, tag = image_ref(registry_prefix, IMAGES["cloudnative-pg"]).rpartition(":")
    return {
        # Always: a tag moved on the mirror is noticed (no digest is pinned yet), as for the hosted applications.
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Always"},
        "crds": {"create": True},
        "replicaCount": 1,
        "priorityClassName": SYSTEM_NAMESPACES[CNPG_SYSTEM].priority_class,
        "resources": resources("100m", "256Mi", "1", "512Mi"),
        "podSecurityContext": POD_SECURITY_CONTEXT,
        "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
        # The operand image a Cluster without `imageName` gets: through the prefix too.
        "config": {"data": {"POSTGRES_IMAGE_NAME": image_ref(registry_prefix, IMAGES["postgresql"])}},
        "webhook": {"port": WEBHOOK_PORT},
    }


class CloudNativePg(pulumi.ComponentResource):
    """The operator alone; clusters are `PostgresCluster`s."""

    def __init__(self, name: str, args: CloudNativePgArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:CloudNativePg", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.release = helm_release(
            "cnpg", "cloudnative-pg", CNPG_SYSTEM, operator_values(args.registry_prefix), args.charts, child
        )
        egress = [api_server_egress(args.api_server_cidrs, args.api_server_port)]
        if args.cluster_namespaces:
            egress.append(
                {
                    "to": [namespaces_peer(args.cluster_namespaces, {"cnpg.io/podRole": "instance"})],
                    "ports": tcp(STATUS_PORT),
                }
            )
        network_policy("allow-operator", CNPG_SYSTEM, OPERATOR_LABELS, child, egress=egress)
        network_policy(
            "allow-webhook",
            CNPG_SYSTEM,
            OPERATOR_LABELS,
            child,
            ingress=[webhook_ingress(args.api_server_cidrs, args.pod_cidr, WEBHOOK_PORT)],
        )
        self.register_outputs({"version": CNPG_VERSION})


@dataclass(frozen=True)
class PostgresClusterArgs:
    config: PostgresConfig
    registry_prefix: str
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    api_server_port: int
    #: `config.client_namespaces` that this stack creates.
    client_namespaces: Sequence[str]


def cluster_spec(config: PostgresConfig, registry_prefix: str) -> dict:
    backup = config.backup
    secret = backup.credentials_secret_name
    return {
        "instances": config.instances,
        "imageName": image_ref(registry_prefix, IMAGES["postgresql"]),
        "primaryUpdateStrategy": "unsupervised",
        "enableSuperuserAccess": False,
        "priorityClassName": WORKLOAD_HIGH,
        "storage": {"size": config.storage_size, "storageClass": config.storage_class},
        "bootstrap": {"initdb": {"database": config.database, "owner": config.owner}},
        "resources": resources("500m", "1Gi", "2", "2Gi"),
        "affinity": {"enablePodAntiAffinity": True, "podAntiAffinityType": "required"},
        "postgresql": {"parameters": {"log_min_duration_statement": "1000", "password_encryption": "scram-sha-256"}},
        "backup": {
            "retentionPolicy": backup.retention,
            "barmanObjectStore": {
                "destinationPath": f"s3://{backup.bucket}/{backup.prefix.strip('/')}",
                "endpointURL": backup.endpoint_url,
                "s3Credentials": {
                    "accessKeyId": {"name": secret, "key": ACCESS_KEY_FIELD},
                    "secretAccessKey": {"name": secret, "key": SECRET_KEY_FIELD},
                },
                "wal": {"compression": "gzip"},
                "data": {"compression": "gzip"},
            },
        },
    }


class PostgresCluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:PostgresCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, ns = args.config, args.config.namespace
        self.cluster = custom_resource(
            f"postgres-{config.name}",
            API,
            "Cluster",
            {"name": config.name, "namespace": ns},
            cluster_spec(config, args.registry_prefix),
            child,
        )
        custom_resource(
            f"postgres-{config.name}-nightly",
            API,
            "ScheduledBackup",
            {"name": f"{config.name}-nightly", "namespace": ns},
            {
                "schedule": config.backup.schedule,
                "cluster": {"name": config.name},
                "method": "barmanObjectStore",
                "backupOwnerReference": "self",
                "immediate": True,
            },
            pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )
        instances = {"cnpg.io/cluster": config.name}
        peers = [{"podSelector": {"matchLabels": instances}}]
        ingress = [
            {"from": peers, "ports": tcp(POSTGRES_PORT, STATUS_PORT)},  # replication and instance status
            {"from": [namespaces_peer([CNPG_SYSTEM], OPERATOR_LABELS)], "ports": tcp(STATUS_PORT)},
        ]
        if args.client_namespaces:
            ingress.append({"from": [namespaces_peer(args.client_namespaces)], "ports": tcp(POSTGRES_PORT)})
        backup = config.backup
        network_policy(
            f"allow-{config.name}",
            ns,
            instances,
            child,
            ingress=ingress,
            egress=[
                {"to": peers, "ports": tcp(POSTGRES_PORT, STATUS_PORT)},
                api_server_egress(args.api_server_cidrs, args.api_server_port),
                {"to": ip_peers([backup.cidr]), "ports": tcp(backup.port)},
            ],
        )
        self.register_outputs(
            {"host": f"{config.name}-rw.{ns}.svc", "backup": f"s3://{backup.bucket}/{backup.prefix.strip('/')}"}
        )


def client_egress_rule(config: PostgresConfig) -> dict:
    """The egress rule a client namespace adds for its pods to reach the catalog (5432 of its instances only)."""
    return {"to": [namespaces_peer([config.namespace], {"cnpg.io/cluster": config.name})], "ports": tcp(POSTGRES_PORT)}

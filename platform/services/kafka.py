"""Kafka for the AUXIP event bus: the Strimzi operator and one KRaft cluster (no ZooKeeper) in the `kafka` namespace.

Controllers and brokers are separate node pools, so a broker under load never starves the metadata quorum. Clients
connect on one TLS listener (9093) with mutual TLS authentication and simple ACLs; the brokers accept it only from
the AUXIP's namespaces (`networkPolicyPeers`, which Strimzi turns into the listener's NetworkPolicy, and an allow
policy of ours that states the same).

The AUXIP's topics and its KafkaUser are the apps layer's (`auxip.deploy.kafka_access`). The User Operator watches
the AUXIP namespace (`users_namespace`), so the Secret holding a user's certificate is written where the client pods
can mount it: a pod reads Secrets of its own namespace only. Strimzi needs its cluster operator's namespaced role
bound there for that (the chart's `watchNamespaces`), which lets the operator manage Secrets in that namespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from auxip_platform.platform.services.common import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    RUN_AS_UNPRIVILEGED,
    ChartSource,
    api_server_egress,
    custom_resource,
    helm_release,
    namespaces_peer,
    network_policy,
    resources,
    tcp,
)
from auxip_platform.platform.services.config import KafkaConfig
from auxip_platform.platform.services.versions import IMAGES, KAFKA_VERSION, STRIMZI_VERSION, split_prefix
from auxip_platform.platform.system_namespaces import KAFKA, SYSTEM_NAMESPACES

API = "kafka.strimzi.io/v1"
TLS_PORT = 9093


@dataclass(frozen=True)
class KafkaArgs:
    config: KafkaConfig
    registry_prefix: str
    charts: ChartSource
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    api_server_port: int
    #: `config.client_namespaces` that this stack creates.
    client_namespaces: Sequence[str]
    #: Where the User Operator watches KafkaUsers and writes their Secrets (the AUXIP namespace); None: the Kafka
    #: cluster's own namespace.
    users_namespace: str | None = None


def operator_values(registry_prefix: str, users_namespace: str | None = None) -> dict:
    host, path = split_prefix(registry_prefix)
    repository = f"{path}/strimzi" if path else "strimzi"
    assert IMAGES["strimzi-operator"].path == "strimzi/operator"  # the layout the chart's defaults assume
    return {
        # Every Strimzi image (operator, Kafka, entity operator) is <registry>/<repository>/<name>:<tag>.
        "defaultImageRegistry": host,
        "defaultImageRepository": repository,
        "defaultImageTag": STRIMZI_VERSION,
        # Always, for the operator and (the chart passes it on) every operand: a tag moved on the mirror is noticed.
        "image": {"imagePullPolicy": "Always"},
        "watchAnyNamespace": False,
        # The operator's namespaced role also in the users' namespace: it delegates the User Operator's rights there.
        "watchNamespaces": [users_namespace] if users_namespace else [],
        "replicas": 1,
        "resources": resources("200m", "384Mi", "1", "512Mi"),
        "priorityClassName": SYSTEM_NAMESPACES[KAFKA].priority_class,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "podSecurityContext": {**POD_SECURITY_CONTEXT, **RUN_AS_UNPRIVILEGED},
        # Operands get the restricted Pod Security profile (the namespace enforces it).
        "extraEnvs": [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}],
    }


def _pool_spec(config: KafkaConfig, role: str) -> dict:
    broker = role == "broker"
    return {
        "replicas": config.brokers if broker else config.controllers,
        "roles": [role],
        "storage": {
            "type": "jbod",
            "volumes": [
                {
                    "id": 0,
                    "type": "persistent-claim",
                    "size": config.storage_size if broker else config.controller_storage_size,
                    "class": config.storage_class,
                    "deleteClaim": False,
                    "kraftMetadata": "shared",
                }
            ],
        },
        "resources": resources("500m", "2Gi", "2", "4Gi") if broker else resources("250m", "1Gi", "1", "1Gi"),
        "template": {"pod": {"priorityClassName": SYSTEM_NAMESPACES[KAFKA].priority_class}},
    }


def kafka_spec(config: KafkaConfig, client_namespaces: Sequence[str], users_namespace: str | None = None) -> dict:
    rf, min_isr = config.replication_factor, config.min_insync_replicas
    user_operator: dict = {"resources": resources("100m", "256Mi", "500m", "512Mi")}
    if users_namespace:
        user_operator["watchedNamespace"] = users_namespace
    return {
        "kafka": {
            "version": KAFKA_VERSION,
            "listeners": [
                {
                    "name": "tls",
                    "port": TLS_PORT,
                    "type": "internal",
                    "tls": True,
                    "authentication": {"type": "tls"},
                    # Without client namespaces, only pods of this namespace (Strimzi's own) may connect.
                    "networkPolicyPeers": [
                        namespaces_peer(client_namespaces) if client_namespaces else {"podSelector": {}}
                    ],
                }
            ],
            "authorization": {"type": "simple"},
            "config": {
                "auto.create.topics.enable": False,
                "default.replication.factor": rf,
                "min.insync.replicas": min_isr,
                "offsets.topic.replication.factor": rf,
                "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": min_isr,
            },
        },
        "entityOperator": {
            "topicOperator": {"resources": resources("100m", "256Mi", "500m", "512Mi")},
            "userOperator": user_operator,
        },
    }


class Kafka(pulumi.ComponentResource):
    def __init__(self, name: str, args: KafkaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:Kafka", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        cluster = {"strimzi.io/cluster": config.name}
        self.release = helm_release(
            "strimzi", "strimzi", KAFKA, operator_values(args.registry_prefix, args.users_namespace), args.charts, child
        )
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        pools = [
            custom_resource(
                f"kafka-pool-{role}",
                API,
                "KafkaNodePool",
                {"name": f"{config.name}-{role}", "namespace": KAFKA, "labels": cluster},
                _pool_spec(config, role),
                after_crds,
            )
            for role in ("controller", "broker")
        ]
        self.kafka = custom_resource(
            f"kafka-{config.name}",
            API,
            "Kafka",
            {"name": config.name, "namespace": KAFKA},
            kafka_spec(config, args.client_namespaces, args.users_namespace),
            pulumi.ResourceOptions(parent=self, depends_on=[self.release, *pools]),
        )
        self._network_policies(args, cluster, child)
        self.register_outputs(
            {
                "bootstrap": f"{config.name}-kafka-bootstrap.{KAFKA}.svc:{TLS_PORT}",
                "strimzi": STRIMZI_VERSION,
                "kafka": KAFKA_VERSION,
            }
        )

    @staticmethod
    def _network_policies(args: KafkaArgs, cluster: dict[str, str], opts: pulumi.ResourceOptions) -> None:
        brokers = {**cluster, "strimzi.io/broker-role": "true"}
        if args.client_namespaces:
            network_policy(
                "allow-clients",
                KAFKA,
                brokers,
                opts,
                ingress=[{"from": [namespaces_peer(args.client_namespaces)], "ports": tcp(TLS_PORT)}],
            )
        # Everything in this namespace is Strimzi's: the operator, controllers, brokers and the entity operator
        # talk to each other (replication 9091, control plane 9090, the operator's admin connections).
        same_namespace = [{"podSelector": {}}]
        network_policy(
            "allow-within-namespace",
            KAFKA,
            None,
            opts,
            ingress=[{"from": same_namespace}],
            egress=[{"to": same_namespace}],
        )
        # The operator and the entity operator watch and write custom resources, Secrets and pods.
        network_policy(
            "allow-api-server",
            KAFKA,
            None,
            opts,
            egress=[api_server_egress(args.api_server_cidrs, args.api_server_port)],
        )


def client_egress_rule(config: KafkaConfig) -> dict:
    """The egress rule a client namespace adds for its pods to reach the brokers (the TLS listener only).

    Client namespaces belong to their workloads (the AUXIP's deployment, hosted applications): each adds this rule
    to its own policies, so that what a namespace may reach is declared by whoever owns it.
    """
    brokers = {"strimzi.io/cluster": config.name, "strimzi.io/broker-role": "true"}
    return {"to": [namespaces_peer([KAFKA], brokers)], "ports": tcp(TLS_PORT)}

"""The cluster services layer: one component per service, in dependency order, children of `ClusterServices`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi

from auxip_platform.platform.services.calico import Calico, CalicoArgs
from auxip_platform.platform.services.cert_manager import CertManager, CertManagerArgs
from auxip_platform.platform.services.common import ChartSource
from auxip_platform.platform.services.config import (
    ClusterServicesConfig,
    api_server_cidrs,
    registry_mirror_endpoint,
)
from auxip_platform.platform.services.kafka import Kafka, KafkaArgs
from auxip_platform.platform.services.kong import Kong, KongArgs
from auxip_platform.platform.services.postgres import (
    CloudNativePg,
    CloudNativePgArgs,
    PostgresCluster,
    PostgresClusterArgs,
)
from auxip_platform.platform.services.registry_mirror import RegistryMirror, RegistryMirrorArgs
from auxip_platform.platform.services.storage import StorageClasses, StorageClassesArgs

if TYPE_CHECKING:
    from auxip_platform.infra.stack_config import StackConfig


@dataclass(frozen=True)
class ClusterServicesArgs:
    config: ClusterServicesConfig
    registry_prefix: str
    #: `api_server_cidrs(stack_config)`: the addresses the API server answers from.
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    #: Namespaces this stack creates (declared and system ones): policies go only into namespaces that exist.
    namespaces: Sequence[str]
    #: Hosted applications' namespaces, which Kong forwards to.
    hosted_namespaces: Sequence[str] = field(default_factory=tuple)
    charts: ChartSource = field(default_factory=ChartSource)
    #: The AUXIP namespace when the apps layer deploys the AUXIP there: its KafkaUser's Secret is written there.
    kafka_users_namespace: str | None = None


class ClusterServices(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:ClusterServices", name, None, opts)
        config, prefix, charts = args.config, args.registry_prefix, args.charts
        cidrs, port = list(args.api_server_cidrs), config.api_server_port
        pod_cidr = config.calico.pod_cidr
        existing = set(args.namespaces)
        child = pulumi.ResourceOptions(parent=self)

        def present(names: Sequence[str]) -> list[str]:
            return [n for n in names if n in existing]

        StorageClasses(f"{name}-storage", StorageClassesArgs(config.storage.classes), child)
        self.mirror = RegistryMirror(
            f"{name}-registry-mirror",
            RegistryMirrorArgs(config.registry_mirror, registry_mirror_endpoint(config, prefix), prefix),
            child,
        )
        # Every other chart's pods need the pod network: they are installed once Calico is.
        network: list[pulumi.Resource] = []
        if config.calico.enabled:
            calico = Calico(f"{name}-calico", CalicoArgs(config.calico, prefix, charts, cidrs, port), child)
            network.append(calico)
        after_network = pulumi.ResourceOptions(parent=self, depends_on=network)
        if config.cert_manager.enabled:
            CertManager(
                f"{name}-cert-manager",
                CertManagerArgs(config.cert_manager, prefix, charts, cidrs, port, pod_cidr),
                after_network,
            )
        if config.kong.enabled:
            upstreams = sorted({*present(config.kong.upstream_namespaces), *args.hosted_namespaces})
            Kong(f"{name}-kong", KongArgs(config.kong, prefix, charts, cidrs, port, pod_cidr, upstreams), after_network)
        if config.kafka.enabled:
            clients = present(config.kafka.client_namespaces)
            users = args.kafka_users_namespace if args.kafka_users_namespace in existing else None
            kafka_args = KafkaArgs(config.kafka, prefix, charts, cidrs, port, clients, users)
            Kafka(f"{name}-kafka", kafka_args, after_network)
        if config.cloudnative_pg.enabled:
            postgres = config.postgres
            cluster_namespaces = [postgres.namespace] if postgres else []
            operator = CloudNativePg(
                f"{name}-cloudnative-pg",
                CloudNativePgArgs(prefix, charts, cidrs, port, pod_cidr, cluster_namespaces),
                after_network,
            )
            if postgres is not None:
                if postgres.namespace not in existing:
                    raise ValueError(
                        f"clusterServices.postgres.namespace: {postgres.namespace!r} is not created by this stack "
                        "(declare it in kubernetes.namespaces)"
                    )
                PostgresCluster(
                    f"{name}-{postgres.name}",
                    PostgresClusterArgs(postgres, prefix, cidrs, port, present(postgres.client_namespaces)),
                    pulumi.ResourceOptions(parent=self, depends_on=[operator.release]),
                )
        self.register_outputs(
            {"containerdMirrors": self.mirror.containerd_mirrors, "mirroredImages": self.mirror.mirrored_images}
        )


def cluster_services_args(config: StackConfig, system_namespaces: Sequence[str]) -> ClusterServicesArgs:
    """The layer's arguments from the stack config and the system namespaces the baseline creates."""
    hosted = [app.namespace for app in config.apps.hosted if app.kind == "kubernetes"]
    directory = config.api_server_only.chart_directory if config.api_server_only else None
    return ClusterServicesArgs(
        config=config.cluster_services,
        registry_prefix=config.registry_prefix,
        api_server_cidrs=api_server_cidrs(config),
        namespaces=[*(ns.name for ns in config.kubernetes.namespaces), *system_namespaces],
        hosted_namespaces=hosted,
        charts=ChartSource(repository=config.cluster_services.chart_repository, directory=directory),
        kafka_users_namespace=config.apps.auxip_namespace if config.apps.auxip is not None else None,
    )

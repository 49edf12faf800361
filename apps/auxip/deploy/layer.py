"""The apps layer of the Pulumi program: hosted applications, the routes their exchanges compile into, and the
AUXIP's own services (its roles, clamd, its Kafka topics and user, its Ingress and NetworkPolicies)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from auxip.deploy.auxip_config import ROUTES_CONFIG_MAP, ROUTES_KEY, auxip_document, render
from auxip.deploy.auxip_service import AuxipService, AuxipServiceArgs, deployment_name, selector
from auxip.deploy.clamd import Clamd, ClamdArgs
from auxip.deploy.config import AppsConfig
from auxip.deploy.context import ClusterContext
from auxip.deploy.exchanges import routing_document
from auxip.deploy.gateway import Gateway, GatewayArgs
from auxip.deploy.hosted_app import EXCHANGE_POD_LABELS, HostedApp, HostedAppArgs
from auxip.deploy.kafka_access import KafkaAccess, KafkaAccessArgs
from auxip.deploy.network import AuxipNetwork, AuxipNetworkArgs

# mypy cannot follow the editable install of `auxip_platform` (an import hook).
from auxip_platform.infra.stack_config import NamespaceConfig  # type: ignore[import-not-found]


@dataclass(frozen=True)
class AppsArgs:
    registry_prefix: str
    kubernetes_version: str
    #: The stack's `NamespaceConfig`s; a hosted application's own (`hosted-<name>`) gives its Pod Security level.
    namespaces: Sequence[NamespaceConfig]
    config: AppsConfig
    #: What the AUXIP's services take from the rest of the stack (`context.cluster_context`).
    context: ClusterContext = field(default_factory=ClusterContext)


class Apps(pulumi.ComponentResource):
    """Parent of the hosted applications, of what the AUXIP needs to exchange with them, and of the AUXIP itself."""

    def __init__(self, name: str, args: AppsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:Apps", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.hosted: list[HostedApp] = []
        storage = config.exchange_storage
        declared = {ns.name: ns for ns in args.namespaces}
        routes_text = render(routing_document(config))
        self.routes: k8s.core.v1.ConfigMap | None = None
        self.auxip: AuxipService | None = None
        if config.hosted or config.auxip:
            self.routes = self._routes_config_map(config.auxip_namespace, routes_text, child)
        if config.hosted and storage is not None:
            self.hosted = [
                HostedApp(
                    f"{name}-{app.name}",
                    HostedAppArgs(
                        app=app,
                        # A VM-hosted application has no namespace.
                        namespace=declared.get(app.namespace),
                        registry_prefix=args.registry_prefix,
                        kubernetes_version=args.kubernetes_version,
                        auxip_namespace=config.auxip_namespace,
                        storage=storage,
                        reverse_proxy=config.reverse_proxy,
                    ),
                    child,
                )
                for app in config.hosted
            ]
            self._exchange_storage_policy(config, child)
        if config.auxip is not None:
            self._auxip(name, args, routes_text, child)
        self.register_outputs({"hosted": [app.name for app in config.hosted], "auxip": config.auxip is not None})

    @staticmethod
    def _routes_config_map(namespace: str, text: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
        return k8s.core.v1.ConfigMap(
            ROUTES_CONFIG_MAP,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ROUTES_CONFIG_MAP, namespace=namespace, labels={"app.kubernetes.io/part-of": "auxip"}
            ),
            data={ROUTES_KEY: text},
            opts=opts,
        )

    def _auxip(self, name: str, args: AppsArgs, routes_text: str, opts: pulumi.ResourceOptions) -> None:
        config, context = args.config, args.context
        service, namespace = config.auxip, config.auxip_namespace
        assert service is not None  # only called with apps.auxip
        assert self.routes is not None  # created whenever apps.auxip is
        if context.kafka is not None:
            KafkaAccess(f"{name}-kafka", KafkaAccessArgs(context.kafka, namespace), opts)
        Clamd(
            f"{name}-clamd",
            ClamdArgs(service.scanner, namespace, args.registry_prefix, client_labels=selector("ingest")),
            opts,
        )
        self.auxip = AuxipService(
            f"{name}-auxip",
            AuxipServiceArgs(
                service=service,
                namespace=namespace,
                registry_prefix=args.registry_prefix,
                context=context,
                config_text=render(auxip_document(service, namespace, context)),
                routes_text=routes_text,
                mounted=[self.routes],
            ),
            opts,
        )
        AuxipNetwork(
            f"{name}-network",
            AuxipNetworkArgs(service, namespace, context, config.reverse_proxy.namespace),
            opts,
        )
        if service.ingress is not None:
            Gateway(
                f"{name}-gateway",
                GatewayArgs(
                    ingress=service.ingress,
                    namespace=namespace,
                    ingress_class=config.reverse_proxy.class_name,
                    service_name=deployment_name("api"),
                    service_port="http",
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[self.auxip]),
            )

    @staticmethod
    def _exchange_storage_policy(config: AppsConfig, opts: pulumi.ResourceOptions) -> None:
        namespace = config.auxip_namespace
        storage = config.exchange_storage
        assert storage is not None  # only called with hosted applications, which the config requires storage for
        labels = {"app.kubernetes.io/part-of": "auxip"}
        # The exchange pods read outboxes and write inboxes: the one egress every exchange needs.
        k8s.networking.v1.NetworkPolicy(
            f"{namespace}-allow-exchange-storage",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-exchange-storage", namespace=namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=EXCHANGE_POD_LABELS),
                policy_types=["Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                ip_block=k8s.networking.v1.IPBlockArgs(cidr=str(storage.cidr))
                            )
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=storage.port)],
                    )
                ],
            ),
            opts=opts,
        )

"""The apps layer of the Pulumi program: hosted applications and the routes their exchanges compile into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from auxip.deploy.config import AppsConfig
from auxip.deploy.exchanges import routing_document
from auxip.deploy.hosted_app import EXCHANGE_POD_LABELS, HostedApp, HostedAppArgs

# mypy cannot follow the editable install of `auxip_platform` (an import hook).
from auxip_platform.infra.stack_config import NamespaceConfig  # type: ignore[import-not-found]

#: The ConfigMap (in the AUXIP namespace) the AUXIP reads its hosted applications' sources and routes from.
ROUTES_CONFIGMAP = "auxip-routes"
ROUTES_KEY = "routes.yaml"


@dataclass(frozen=True)
class AppsArgs:
    registry_prefix: str
    kubernetes_version: str
    #: The stack's `NamespaceConfig`s; a hosted application's own (`hosted-<name>`) gives its Pod Security level.
    namespaces: Sequence[NamespaceConfig]
    config: AppsConfig


class Apps(pulumi.ComponentResource):
    """Parent of the hosted applications and of what the AUXIP needs to exchange with them."""

    def __init__(self, name: str, args: AppsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:Apps", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.hosted: list[HostedApp] = []
        storage = config.exchange_storage
        declared = {ns.name: ns for ns in args.namespaces}
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
            self._auxip_side(config, child)
        self.register_outputs({"hosted": [app.name for app in config.hosted]})

    def _auxip_side(self, config: AppsConfig, opts: pulumi.ResourceOptions) -> None:
        namespace = config.auxip_namespace
        storage = config.exchange_storage
        assert storage is not None  # only called with hosted applications, which the config requires storage for
        labels = {"app.kubernetes.io/part-of": "auxip"}
        k8s.core.v1.ConfigMap(
            ROUTES_CONFIGMAP,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ROUTES_CONFIGMAP, namespace=namespace, labels=labels),
            data={ROUTES_KEY: yaml.safe_dump(routing_document(config), sort_keys=False)},
            opts=opts,
        )
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

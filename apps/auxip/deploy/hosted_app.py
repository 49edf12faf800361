"""One application hosted on the platform: its own closed namespace, or a VM of the infra layer.

Network model: the application never talks to its exchange peers itself. The AUXIP's exchange pods in the AUXIP
namespace move the files: its ingest pods poll inbound peers (sources, label `auxip.esa.int/exchange-sources`) and
its route pods deliver to outbound ones (targets, `auxip.esa.int/exchange-targets`), so each exchange with an
external peer opens exactly one egress rule there, to the peer's CIDR and port, for those pods only. The application
only reaches its inbox and outbox, S3 prefixes of the exchange bucket: its namespace allows egress to DNS and to
that endpoint, and ingress only from the reverse proxy when it has an Ingress. Deliveries into the inbox are S3
writes by the AUXIP, so they open no network path into the namespace at all. An exchange with `auxip-ingestion`
stays inside the AUXIP (ingestion, catalog, S3) and opens nothing either.

A VM-hosted application (`kind: vm`) gets the same exchange policies; its machine, security group and inventory
entry come from the infra layer (`openstack.hostedVms[]` or an existing host of role hosted).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip.deploy.config import Exchange, ExchangeStorage, ExternalPeer, HostedAppConfig, ReverseProxy
from auxip.deploy.exchanges import inbox_url, outbox_url
from auxip.deploy.pod import image, probe, resource_requirements, scratch_volume, security_contexts

# The namespace and its default-deny policies are the baseline's, reused as is. mypy cannot follow the editable
# install of `auxip_platform` (an import hook), hence the ignores; the tests exercise both through the program.
from auxip_platform.infra.stack_config import (  # type: ignore[import-not-found]
    ContainerDefaults,
    NamespaceConfig,
    QuotaProfile,
)
from auxip_platform.platform.baseline import namespace_with_default_deny  # type: ignore[import-not-found]
from auxip_platform.platform.priority import WORKLOAD_DEFAULT  # type: ignore[import-not-found]
from auxip_platform.platform.quotas import namespace_quota  # type: ignore[import-not-found]

#: Pods of the AUXIP that move exchanged files (its ingest and route roles): they reach the exchange storage.
EXCHANGE_POD_LABELS = {"auxip.esa.int/exchange": "true"}
#: Of those, the pods that poll sources (ingest): an inbound exchange's peer is a source, its egress selects them.
EXCHANGE_SOURCE_LABELS = {"auxip.esa.int/exchange-sources": "true"}
#: And the pods that deliver to targets (route): an outbound exchange's peer is a target, its egress selects them.
EXCHANGE_TARGET_LABELS = {"auxip.esa.int/exchange-targets": "true"}
#: The Secret (created from Vault, outside this program) holding the application's S3 credentials file.
CREDENTIALS_MOUNT = "/var/run/secrets/auxip/exchange"
TMP_SIZE = "1Gi"

meta = k8s.meta.v1
core = k8s.core.v1
net = k8s.networking.v1


@dataclass(frozen=True)
class HostedAppArgs:
    app: HostedAppConfig
    #: The application's `NamespaceConfig` from `kubernetes.namespaces` (its Pod Security level); None for a VM.
    namespace: NamespaceConfig | None
    registry_prefix: str
    kubernetes_version: str
    #: Where the AUXIP's exchange pods run.
    auxip_namespace: str
    storage: ExchangeStorage
    reverse_proxy: ReverseProxy


def exchange_policy_name(app: HostedAppConfig, exchange: Exchange) -> str:
    return f"exchange-{app.name}-{exchange.name}"


def exchange_pod_labels(exchange: Exchange) -> dict[str, str]:
    """The AUXIP pods that reach an exchange's external peer: ingest polls an inbound one, route delivers to an
    outbound one."""
    return EXCHANGE_SOURCE_LABELS if exchange.direction == "in" else EXCHANGE_TARGET_LABELS


def _ip_block(cidr: str) -> list[net.NetworkPolicyPeerArgs]:
    return [net.NetworkPolicyPeerArgs(ip_block=net.IPBlockArgs(cidr=cidr))]


class HostedApp(pulumi.ComponentResource):
    def __init__(self, name: str, args: HostedAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:HostedApp", name, None, opts)
        self.args = args
        app = args.app
        child = pulumi.ResourceOptions(parent=self)
        self.exchange_policies = [
            self._exchange_policy(exchange, exchange.peer, child)
            for exchange in app.exchanges
            if isinstance(exchange.peer, ExternalPeer)
        ]
        self.namespace: core.Namespace | None = None
        self.deployment: k8s.apps.v1.Deployment | None = None
        if app.kind == "kubernetes":
            self._in_kubernetes(child)
        self.register_outputs(
            {
                "kind": app.kind,
                "namespace": app.namespace if app.kind == "kubernetes" else None,
                "exchangePolicies": [
                    exchange_policy_name(app, e) for e in app.exchanges if isinstance(e.peer, ExternalPeer)
                ],
            }
        )

    def _exchange_policy(
        self, exchange: Exchange, peer: ExternalPeer, opts: pulumi.ResourceOptions
    ) -> net.NetworkPolicy:
        app = self.args.app
        name = exchange_policy_name(app, exchange)
        return net.NetworkPolicy(
            name,
            metadata=meta.ObjectMetaArgs(
                name=name,
                namespace=self.args.auxip_namespace,
                labels={"auxip.esa.int/hosted-app": app.name, "auxip.esa.int/exchange-direction": exchange.direction},
            ),
            spec=net.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=exchange_pod_labels(exchange)),
                policy_types=["Egress"],
                egress=[
                    net.NetworkPolicyEgressRuleArgs(
                        to=_ip_block(str(peer.cidr)),
                        ports=[net.NetworkPolicyPortArgs(protocol=exchange.protocol, port=exchange.port)],
                    )
                ],
            ),
            opts=opts,
        )

    def _in_kubernetes(self, opts: pulumi.ResourceOptions) -> None:
        app, namespace = self.args.app, self.args.namespace
        assert namespace is not None  # the stack config requires it for kind kubernetes
        self.namespace = namespace_with_default_deny(
            namespace, self.args.kubernetes_version, opts, labels={"auxip.esa.int/hosted-app": app.name}
        )
        # Everything else waits for the namespace (and is deleted before it).
        inside = pulumi.ResourceOptions(parent=self.namespace)
        self._quota(inside)
        self._app_network(inside)
        account = core.ServiceAccount(
            f"{app.namespace}-sa",
            metadata=self._metadata(app.name),
            # The application never calls the Kubernetes API: no token, and no Role or RoleBinding at all.
            automount_service_account_token=False,
            opts=inside,
        )
        self.deployment = self._deployment(account, namespace.pod_security == "restricted", inside)
        if app.ingress_host and app.port:  # the config model requires a port with an ingress host
            self._ingress(app.ingress_host, app.port, inside)

    def _metadata(self, name: str) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(name=name, namespace=self.args.app.namespace, labels=self._labels())

    def _labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.args.app.name, "app.kubernetes.io/part-of": "auxip"}

    def _pods(self) -> meta.LabelSelectorArgs:
        return meta.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": self.args.app.name})

    def _quota(self, opts: pulumi.ResourceOptions) -> None:
        app = self.args.app
        quota, resources = app.quota, app.resources
        assert quota is not None  # the config model requires quota and resources for kind kubernetes
        assert resources is not None
        # Inbox and outbox are S3 prefixes: no volume claims, and no way to expose the namespace outside the reverse
        # proxy (the profile's defaults: no claims, load balancers or node ports). A container gets what the app
        # declares, and no more.
        profile = QuotaProfile(
            requests=quota.requests,
            limits=quota.limits,
            pods=quota.pods,
            container=ContainerDefaults(requests=resources.requests, limits=resources.limits, max=resources.limits),
        )
        namespace_quota(app.namespace, profile, opts, labels=self._labels())

    def _app_network(self, opts: pulumi.ResourceOptions) -> None:
        app, storage = self.args.app, self.args.storage
        net.NetworkPolicy(
            f"{app.namespace}-allow-exchange-storage",
            metadata=self._metadata("allow-exchange-storage"),
            spec=net.NetworkPolicySpecArgs(
                pod_selector=self._pods(),
                policy_types=["Egress"],
                egress=[
                    net.NetworkPolicyEgressRuleArgs(
                        to=_ip_block(str(storage.cidr)),
                        ports=[net.NetworkPolicyPortArgs(protocol="TCP", port=storage.port)],
                    )
                ],
            ),
            opts=opts,
        )
        if app.ingress_host:
            proxy = self.args.reverse_proxy.namespace
            net.NetworkPolicy(
                f"{app.namespace}-allow-reverse-proxy",
                metadata=self._metadata("allow-reverse-proxy"),
                spec=net.NetworkPolicySpecArgs(
                    pod_selector=self._pods(),
                    policy_types=["Ingress"],
                    ingress=[
                        net.NetworkPolicyIngressRuleArgs(
                            from_=[
                                net.NetworkPolicyPeerArgs(
                                    namespace_selector=meta.LabelSelectorArgs(
                                        match_labels={"kubernetes.io/metadata.name": proxy}
                                    )
                                )
                            ],
                            ports=[net.NetworkPolicyPortArgs(protocol="TCP", port=app.port)],
                        )
                    ],
                ),
                opts=opts,
            )

    def _security_contexts(self, restricted: bool) -> tuple[core.PodSecurityContextArgs, core.SecurityContextArgs]:
        # An exempt (baseline) namespace exists for images that must run as their own (root) user.
        return security_contexts(self.args.app.run_as_user if restricted else None)

    def _container(self, restricted: bool) -> core.ContainerArgs:
        app, storage = self.args.app, self.args.storage
        resources = app.resources
        assert resources is not None  # the config model requires it for kind kubernetes
        _, security = self._security_contexts(restricted)
        # An HTTP check on `healthPath`, else a TCP check on `port`; none without a port.
        port = app.port
        readiness = probe(port, app.health_path, period_seconds=10) if port else None
        liveness = probe(port, app.health_path, initial_delay_seconds=30, period_seconds=20) if port else None
        env = {
            "AUXIP_INBOX_URL": inbox_url(storage, app),
            "AUXIP_OUTBOX_URL": outbox_url(storage, app),
            "AWS_ENDPOINT_URL": storage.endpoint_url,
            "AWS_REGION": storage.region,
            # A file, not environment variables: secrets in the environment leak into crash dumps and child processes.
            "AWS_SHARED_CREDENTIALS_FILE": f"{CREDENTIALS_MOUNT}/credentials",
        }
        return core.ContainerArgs(
            name=app.name,
            image=image(self.args.registry_prefix, str(app.image)),
            image_pull_policy="Always",
            ports=[core.ContainerPortArgs(name="app", container_port=app.port)] if app.port else None,
            env=[core.EnvVarArgs(name=key, value=value) for key, value in env.items()],
            resources=resource_requirements(resources),
            security_context=security,
            volume_mounts=[
                core.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # a private emptyDir
                core.VolumeMountArgs(name="exchange-credentials", mount_path=CREDENTIALS_MOUNT, read_only=True),
            ],
            readiness_probe=readiness,
            liveness_probe=liveness,
        )

    def _deployment(
        self, account: core.ServiceAccount, restricted: bool, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.Deployment:
        app = self.args.app
        pod_security, _ = self._security_contexts(restricted)
        return k8s.apps.v1.Deployment(
            f"{app.namespace}-deployment",
            metadata=self._metadata(app.name),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=app.replicas,
                selector=self._pods(),
                # One surge pod and none unavailable: the quota is checked to hold replicas + 1.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
                ),
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=self._labels()),
                    spec=core.PodSpecArgs(
                        # A guest of the platform: scheduled when there is room, never preempting the AUXIP's pods.
                        priority_class_name=WORKLOAD_DEFAULT,
                        service_account_name=account.metadata.name,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=pod_security,
                        containers=[self._container(restricted)],
                        volumes=[
                            scratch_volume("tmp", TMP_SIZE),
                            core.VolumeArgs(
                                name="exchange-credentials",
                                secret=core.SecretVolumeSourceArgs(
                                    secret_name=f"{app.name}-exchange-credentials", default_mode=0o440
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=opts,
        )

    def _ingress(self, host: str, port: int, opts: pulumi.ResourceOptions) -> None:
        app = self.args.app
        core.Service(
            f"{app.namespace}-service",
            metadata=self._metadata(app.name),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector={"app.kubernetes.io/name": app.name},
                ports=[core.ServicePortArgs(name="app", port=port, target_port="app", protocol="TCP")],
            ),
            opts=opts,
        )
        net.Ingress(
            f"{app.namespace}-ingress",
            metadata=self._metadata(app.name),
            spec=net.IngressSpecArgs(
                ingress_class_name=self.args.reverse_proxy.class_name,
                # The certificate is the reverse proxy's to obtain (cert-manager or a provisioned Secret).
                tls=[net.IngressTLSArgs(hosts=[host], secret_name=f"{app.name}-tls")],
                rules=[
                    net.IngressRuleArgs(
                        host=host,
                        http=net.HTTPIngressRuleValueArgs(
                            paths=[
                                net.HTTPIngressPathArgs(
                                    path="/",
                                    path_type="Prefix",
                                    backend=net.IngressBackendArgs(
                                        service=net.IngressServiceBackendArgs(
                                            name=app.name, port=net.ServiceBackendPortArgs(name="app")
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            opts=opts,
        )

"""One application hosted on the platform: its own closed namespace, or a VM of the infra layer.

Network model: the application never talks to its exchange peers itself. The AUXIP's exchange pods (label
`auxip.esa.int/exchange: "true"` in the AUXIP namespace) poll inbound peers and deliver to outbound ones, so each
exchange with an external peer opens exactly one egress rule there, to the peer's CIDR and port. The application
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

#: Pods of the AUXIP that run sources and routes; the per-exchange egress rules select them and nothing else.
EXCHANGE_POD_LABELS = {"auxip.esa.int/exchange": "true"}
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
                pod_selector=meta.LabelSelectorArgs(match_labels=EXCHANGE_POD_LABELS),
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
        app = self.args.app
        # An exempt (baseline) namespace exists for images that must run as their own (root) user: only the user is
        # left to the image; no privilege escalation, no capability, a read-only root and RuntimeDefault stay.
        user = app.run_as_user if restricted else None
        seccomp = core.SeccompProfileArgs(type="RuntimeDefault")
        pod = core.PodSecurityContextArgs(
            run_as_non_root=True if restricted else None,
            run_as_user=user,
            run_as_group=user,
            fs_group=user,
            seccomp_profile=seccomp,
        )
        container = core.SecurityContextArgs(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True if restricted else None,
            run_as_user=user,
            capabilities=core.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=seccomp,
        )
        return pod, container

    def _probes(self) -> tuple[core.ProbeArgs | None, core.ProbeArgs | None]:
        """(readiness, liveness): an HTTP check on `healthPath`, else a TCP check on `port`; none without a port."""
        app = self.args.app
        if app.port is None:
            return None, None
        http = core.HTTPGetActionArgs(path=app.health_path, port=app.port) if app.health_path else None
        tcp = None if http else core.TCPSocketActionArgs(port=app.port)
        readiness = core.ProbeArgs(http_get=http, tcp_socket=tcp, period_seconds=10)
        liveness = core.ProbeArgs(http_get=http, tcp_socket=tcp, initial_delay_seconds=30, period_seconds=20)
        return readiness, liveness

    def _container(self, restricted: bool) -> core.ContainerArgs:
        app, storage = self.args.app, self.args.storage
        resources = app.resources
        assert resources is not None  # the config model requires it for kind kubernetes
        _, security = self._security_contexts(restricted)
        readiness, liveness = self._probes()
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
            image=f"{self.args.registry_prefix.rstrip('/')}/{app.image}",
            image_pull_policy="Always",
            ports=[core.ContainerPortArgs(name="app", container_port=app.port)] if app.port else None,
            env=[core.EnvVarArgs(name=key, value=value) for key, value in env.items()],
            resources=core.ResourceRequirementsArgs(
                requests={"cpu": resources.requests.cpu, "memory": resources.requests.memory},
                limits={"cpu": resources.limits.cpu, "memory": resources.limits.memory},
            ),
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
                            core.VolumeArgs(name="tmp", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=TMP_SIZE)),
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

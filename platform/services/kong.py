"""Kong: the ingress controller and the platform's reverse proxy / API gateway (as in the original AUXIP system).

DB-less Kong Gateway with the Kong Ingress Controller in the same pod. Rate limiting and security headers are
cluster-wide plugins (`KongClusterPlugin` with `global: "true"`), so no route can be published without them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip_platform.platform.services.common import (
    CONTAINER_SECURITY_CONTEXT,
    PART_OF,
    POD_SECURITY_CONTEXT,
    RUN_AS_UNPRIVILEGED,
    ChartSource,
    api_server_egress,
    custom_object,
    helm_release,
    namespaces_peer,
    network_policy,
    resources,
    tcp,
    webhook_ingress,
)
from auxip_platform.platform.services.config import KongConfig
from auxip_platform.platform.services.versions import IMAGES, KIC_VERSION, KONG_VERSION, image_ref
from auxip_platform.platform.system_namespaces import KONG, SYSTEM_NAMESPACES

CONTROLLER = "ingress-controllers.konghq.com/kong"
#: The chart's labels on the Kong pod (proxy and controller containers).
POD_LABELS = {"app.kubernetes.io/name": "kong", "app.kubernetes.io/instance": "kong"}
PROXY_PORTS = (8000, 8443)
ADMISSION_PORT = 8080
#: A UID above 10000, which no account of the nodes has (the chart defaults to 1000), as the hosted applications run.
RUN_AS = {"runAsUser": 10001, "runAsGroup": 10001}
SECURITY_HEADERS = [
    "Strict-Transport-Security:max-age=31536000; includeSubDomains",
    "X-Content-Type-Options:nosniff",
    "X-Frame-Options:DENY",
    "Referrer-Policy:no-referrer",
]


@dataclass(frozen=True)
class KongArgs:
    config: KongConfig
    registry_prefix: str
    charts: ChartSource
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    api_server_port: int
    pod_cidr: ipaddress.IPv4Network
    #: Namespaces Kong forwards to: `config.upstream_namespaces` that exist, plus the hosted applications'.
    upstream_namespaces: Sequence[str]


def _image(registry_prefix: str, key: str) -> dict[str, str]:
    repository, _, tag = image_ref(registry_prefix, IMAGES[key]).rpartition(":")
    return {"repository": repository, "tag": tag}


def chart_values(config: KongConfig, registry_prefix: str) -> dict:
    return {
        # Always: a tag moved on the mirror is noticed (no digest is pinned yet); the controller's image too.
        "image": {**_image(registry_prefix, "kong"), "pullPolicy": "Always"},
        "replicaCount": config.replicas,
        "podDisruptionBudget": {"enabled": config.replicas > 1, "maxUnavailable": 1},
        "priorityClassName": SYSTEM_NAMESPACES[KONG].priority_class,
        # DB-less: the controller pushes the whole configuration; there is no database to secure or back up.
        "env": {"database": "off", "server_tokens": "off", "headers": "off"},
        # The controller reaches the admin API in its own pod: disabled, it listens on 127.0.0.1 (TLS) with no
        # Service, so no other pod can reconfigure the gateway whatever the NetworkPolicies say.
        "admin": {"enabled": False, "http": {"enabled": False}, "tls": {"enabled": True}},
        "proxy": {"type": config.proxy_service_type},
        "manager": {"enabled": False},
        "resources": resources("250m", "512Mi", "2", "1Gi"),
        "securityContext": {**POD_SECURITY_CONTEXT, **RUN_AS_UNPRIVILEGED},
        # Per container too: the chart's own default sets runAsUser 1000 there, which would win over the pod's.
        "containerSecurityContext": {**CONTAINER_SECURITY_CONTEXT, **RUN_AS_UNPRIVILEGED},
        "ingressController": {
            "enabled": True,
            "image": _image(registry_prefix, "kong-ingress-controller"),
            "ingressClass": config.ingress_class,
            # Ours is created before the release (`Kong.ingress_class`): the chart must not create a second owner.
            "createIngressClass": False,
            "resources": resources("100m", "256Mi", "500m", "512Mi"),
            "admissionWebhook": {"enabled": True, "port": ADMISSION_PORT},
        },
    }


class Kong(pulumi.ComponentResource):
    def __init__(self, name: str, args: KongArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:Kong", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        # Created before the chart, which then finds it and does not make its own.
        self.ingress_class = k8s.networking.v1.IngressClass(
            config.ingress_class,
            metadata={"name": config.ingress_class, "labels": dict(PART_OF)},
            spec={"controller": CONTROLLER},
            opts=child,
        )
        self.release = helm_release(
            "kong",
            "kong",
            KONG,
            chart_values(config, args.registry_prefix),
            args.charts,
            pulumi.ResourceOptions(parent=self, depends_on=[self.ingress_class]),
        )
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        plugin_meta = {
            "annotations": {"kubernetes.io/ingress.class": config.ingress_class},
            # `global: "true"`: the plugin applies to every route, service and consumer of the class.
            "labels": {**PART_OF, "global": "true"},
        }
        if config.rate_limit_per_minute:
            custom_object(
                "auxip-rate-limit",
                "configuration.konghq.com/v1",
                "KongClusterPlugin",
                {"name": "auxip-rate-limit", **plugin_meta},
                {
                    "plugin": "rate-limiting",
                    # `local`: counters per Kong pod, no Redis to run; the effective limit is per pod and client.
                    "config": {"minute": config.rate_limit_per_minute, "policy": "local", "limit_by": "ip"},
                },
                after_crds,
            )
        custom_object(
            "auxip-security-headers",
            "configuration.konghq.com/v1",
            "KongClusterPlugin",
            {"name": "auxip-security-headers", **plugin_meta},
            {"plugin": "response-transformer", "config": {"add": {"headers": SECURITY_HEADERS}}},
            after_crds,
        )
        # The proxy is the platform's edge: any client may connect, on the proxy ports only.
        network_policy(
            "allow-proxy",
            KONG,
            POD_LABELS,
            child,
            ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": tcp(*PROXY_PORTS)}],
        )
        network_policy(
            "allow-admission-webhook",
            KONG,
            POD_LABELS,
            child,
            ingress=[webhook_ingress(args.api_server_cidrs, args.pod_cidr, ADMISSION_PORT)],
        )
        egress = [api_server_egress(args.api_server_cidrs, args.api_server_port)]
        if args.upstream_namespaces:
            egress.append({"to": [namespaces_peer(args.upstream_namespaces)]})
        network_policy("allow-upstreams", KONG, POD_LABELS, child, egress=egress)
        self.register_outputs({"ingressClass": config.ingress_class, "kong": KONG_VERSION, "controller": KIC_VERSION})

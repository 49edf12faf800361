"""cert-manager and the platform's internal CA: a self-signed root, the CA certificate, the `auxip-internal-ca`
ClusterIssuer every internal certificate (Kafka clients, webhooks, service TLS) is issued by."""

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
    network_policy,
    resources,
    webhook_ingress,
)
from auxip_platform.platform.services.config import CertManagerConfig
from auxip_platform.platform.services.versions import CERT_MANAGER_VERSION, IMAGES, image_ref
from auxip_platform.platform.system_namespaces import CERT_MANAGER, SYSTEM_NAMESPACES

SELF_SIGNED_ISSUER = "auxip-selfsigned-root"
CA_ISSUER = "auxip-internal-ca"
#: The CA's key pair; the ClusterIssuer reads it from the cert-manager namespace (its cluster resource namespace).
CA_SECRET_NAME = "auxip-internal-ca"  # noqa: S105 (a Secret's name, not its content)
WEBHOOK_PORT = 10250


@dataclass(frozen=True)
class CertManagerArgs:
    config: CertManagerConfig
    registry_prefix: str
    charts: ChartSource
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    api_server_port: int
    pod_cidr: ipaddress.IPv4Network


def _image(registry_prefix: str, key: str) -> dict[str, str]:
    repository, _, tag = image_ref(registry_prefix, IMAGES[key]).rpartition(":")
    # Always: a tag moved on the mirror is noticed (no digest is pinned yet), as for the hosted applications.
    return {"repository": repository, "tag": tag, "pullPolicy": "Always"}


def chart_values(registry_prefix: str) -> dict:
    hardened = {
        "securityContext": {**POD_SECURITY_CONTEXT, **RUN_AS_UNPRIVILEGED},
        "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
    }
    return {
        "crds": {"enabled": True, "keep": True},
        "global": {
            "priorityClassName": SYSTEM_NAMESPACES[CERT_MANAGER].priority_class,
            "leaderElection": {"namespace": CERT_MANAGER},
        },
        "replicaCount": 2,
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        "image": _image(registry_prefix, "cert-manager-controller"),
        "resources": resources("50m", "128Mi", "500m", "256Mi"),
        **hardened,
        "webhook": {
            "replicaCount": 2,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "image": _image(registry_prefix, "cert-manager-webhook"),
            "resources": resources("20m", "64Mi", "200m", "128Mi"),
            "securePort": WEBHOOK_PORT,
            **hardened,
        },
        "cainjector": {
            "image": _image(registry_prefix, "cert-manager-cainjector"),
            "resources": resources("20m", "128Mi", "200m", "256Mi"),
            **hardened,
        },
        "acmesolver": {"image": _image(registry_prefix, "cert-manager-acmesolver")},
        "startupapicheck": {
            "image": _image(registry_prefix, "cert-manager-startupapicheck"),
            "resources": resources("10m", "32Mi", "100m", "64Mi"),
            **hardened,
        },
    }


class CertManager(pulumi.ComponentResource):
    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:CertManager", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        self.release = helm_release(
            "cert-manager",
            "cert-manager",
            CERT_MANAGER,
            chart_values(args.registry_prefix),
            args.charts,
            child,
        )
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        root = custom_resource(
            SELF_SIGNED_ISSUER,
            "cert-manager.io/v1",
            "ClusterIssuer",
            {"name": SELF_SIGNED_ISSUER},
            {"selfSigned": {}},
            after_crds,
        )
        ca = custom_resource(
            "auxip-internal-ca-certificate",
            "cert-manager.io/v1",
            "Certificate",
            {"name": CA_SECRET_NAME, "namespace": CERT_MANAGER},
            {
                "isCA": True,
                "commonName": config.ca_common_name,
                "subject": {"organizations": ["European Space Agency"], "organizationalUnits": ["AUXIP"]},
                "secretName": CA_SECRET_NAME,
                "duration": config.ca_duration,
                "renewBefore": config.ca_renew_before,
                # Rotated with every renewal: a leaked CA key stops being useful at the next renewal.
                "privateKey": {"algorithm": "ECDSA", "size": 384, "rotationPolicy": "Always"},
                "usages": ["cert sign", "crl sign", "digital signature"],
                "issuerRef": {"name": SELF_SIGNED_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            pulumi.ResourceOptions(parent=self, depends_on=[root]),
        )
        self.ca_issuer = custom_resource(
            CA_ISSUER,
            "cert-manager.io/v1",
            "ClusterIssuer",
            {"name": CA_ISSUER},
            {"ca": {"secretName": CA_SECRET_NAME}},
            pulumi.ResourceOptions(parent=self, depends_on=[ca]),
        )
        api = api_server_egress(args.api_server_cidrs, args.api_server_port)
        network_policy("allow-api-server", CERT_MANAGER, None, child, egress=[api])
        network_policy(
            "allow-webhook",
            CERT_MANAGER,
            {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/component": "webhook"},
            child,
            ingress=[webhook_ingress(args.api_server_cidrs, args.pod_cidr, WEBHOOK_PORT)],
        )
        self.register_outputs({"version": CERT_MANAGER_VERSION, "caIssuer": CA_ISSUER})

"""Calico as the CNI, installed by the Tigera operator: the pod network and NetworkPolicy enforcement.

The chart installs only the operator (its own `Installation` is disabled): the `Installation` is rendered here so
that it is schema-checked and reviewed like every other object, and so that it points the operator at the registry
prefix. The operator then pulls every Calico image as `<registryPrefix>/calico/<name>:<Calico version>`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from auxip_platform.platform.services.common import (
    ChartSource,
    api_server_egress,
    custom_resource,
    helm_release,
    network_policy,
    resources,
)
from auxip_platform.platform.services.config import CalicoConfig
from auxip_platform.platform.services.versions import CALICO_VERSION, IMAGES, split_prefix
from auxip_platform.platform.system_namespaces import CALICO_SYSTEM, SYSTEM_NAMESPACES, TIGERA_OPERATOR

#: The Tigera operator reconciles exactly one Installation, named `default`.
INSTALLATION_NAME = "default"


@dataclass(frozen=True)
class CalicoArgs:
    config: CalicoConfig
    registry_prefix: str
    charts: ChartSource
    api_server_cidrs: Sequence[ipaddress.IPv4Network]
    api_server_port: int


def operator_values(registry_prefix: str) -> dict:
    host, path = split_prefix(registry_prefix)
    operator = IMAGES["tigera-operator"]
    return {
        # Rendered below instead (schema-checked, registry prefix set).
        "installation": {"enabled": False},
        "manageCRDs": False,
        "apiServer": {"enabled": False},
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
        "tigeraOperator": {
            "registry": host,
            "image": f"{path}/{operator.path}" if path else operator.path,
            "version": operator.tag,
        },
        "calicoctl": {"image": f"{registry_prefix}/calico/ctl", "tag": CALICO_VERSION},
        "resources": resources("100m", "128Mi", "500m", "256Mi"),
        "priorityClassName": SYSTEM_NAMESPACES[TIGERA_OPERATOR].priority_class,
    }


def installation_spec(config: CalicoConfig, registry_prefix: str) -> dict:
    # BGP carries routes for IP-in-IP; VXLAN needs none (and OpenStack networks have no BGP peers to offer).
    bgp = "Enabled" if config.encapsulation.startswith("IPIP") else "Disabled"
    return {
        "variant": "Calico",
        "registry": registry_prefix.rstrip("/") + "/",
        "imagePath": "calico",
        "cni": {"type": "Calico"},
        "calicoNetwork": {
            "bgp": bgp,
            "ipPools": [
                {
                    "name": "default-ipv4-ippool",
                    "cidr": str(config.pod_cidr),
                    "encapsulation": config.encapsulation,
                    "natOutgoing": "Enabled",
                    "nodeSelector": "all()",
                    "blockSize": 26,
                }
            ],
        },
        "controlPlaneReplicas": 2,
    }


class Calico(pulumi.ComponentResource):
    def __init__(self, name: str, args: CalicoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:Calico", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The operator.tigera.io and crd.projectcalico.org CRDs are a chart of their own (Calico 3.32): installed
        # first, and upgraded by Helm like everything else rather than by the operator at run time.
        self.crds = helm_release("calico-crds", "calico-crds", TIGERA_OPERATOR, {}, args.charts, child)
        self.release = helm_release(
            "tigera-operator",
            "calico",
            TIGERA_OPERATOR,
            operator_values(args.registry_prefix),
            args.charts,
            pulumi.ResourceOptions(parent=self, depends_on=[self.crds]),
        )
        self.installation = custom_resource(
            "calico-installation",
            "operator.tigera.io/v1",
            "Installation",
            {"name": INSTALLATION_NAME},
            installation_spec(args.config, args.registry_prefix),
            pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        # calico-node and Typha use the host network (NetworkPolicies do not apply to them); kube-controllers is
        # an ordinary pod that watches the API server.
        network_policy(
            "allow-kube-controllers-api-server",
            CALICO_SYSTEM,
            {"k8s-app": "calico-kube-controllers"},
            child,
            egress=[api_server_egress(args.api_server_cidrs, args.api_server_port)],
        )
        self.register_outputs({"version": CALICO_VERSION, "podCidr": str(args.config.pod_cidr)})

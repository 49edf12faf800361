"""The private network: a nodes subnet for VMs, a services subnet for load balancer VIPs, a router to the outside."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.config import NetworkConfig
from auxip_platform.infra.tags import tags


@dataclass(frozen=True)
class NetworkArgs:
    stack: str
    config: NetworkConfig
    #: Name of the provider network the router's gateway (and every floating IP) sits on.
    external_network: str


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack, label = args.stack, tags(args.stack, "network")
        self.network = openstack.networking.Network(
            f"{stack}-net", name=f"{stack}-net", admin_state_up=True, tags=label, opts=child
        )
        self.subnets = {
            purpose: openstack.networking.Subnet(
                f"{stack}-{purpose}",
                name=f"{stack}-{purpose}",
                network_id=self.network.id,
                cidr=str(cidr),
                ip_version=4,
                dns_nameservers=[str(server) for server in args.config.dns_nameservers],
                tags=label,
                opts=child,
            )
            for purpose, cidr in (("nodes", args.config.nodes_cidr), ("services", args.config.services_cidr))
        }
        external = openstack.networking.get_network_output(
            name=args.external_network, external=True, opts=pulumi.InvokeOptions(parent=self)
        )
        self.router = openstack.networking.Router(
            f"{stack}-router",
            name=f"{stack}-router",
            external_network_id=external.id,
            tags=label,
            opts=child,
        )
        for purpose, subnet in self.subnets.items():
            openstack.networking.RouterInterface(
                f"{stack}-router-{purpose}", router_id=self.router.id, subnet_id=subnet.id, opts=child
            )
        self.register_outputs(
            {
                "networkId": self.network.id,
                "nodesSubnetId": self.subnets["nodes"].id,
                "servicesSubnetId": self.subnets["services"].id,
                "routerId": self.router.id,
            }
        )

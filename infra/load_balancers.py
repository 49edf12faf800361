"""Octavia load balancers: an internal one for the Kubernetes API, a public one for ingress HTTPS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.firewall import HTTPS, KUBE_API
from auxip_platform.infra.tags import tags


@dataclass(frozen=True)
class TcpBackend:
    role: str  # internal-lb | ingress-lb
    listen_port: int
    member_port: int
    members: Sequence[pulumi.Input[str]]
    #: Client CIDRs the listener accepts; None means anyone (only the public ingress).
    allowed_cidrs: list[str] | None


@dataclass(frozen=True)
class LoadBalancersArgs:
    stack: str
    subnet_id: pulumi.Input[str]
    security_groups: dict[str, pulumi.Input[str]]
    external_network: str
    flavor: str | None
    api: TcpBackend
    ingress: TcpBackend


class LoadBalancers(pulumi.ComponentResource):
    def __init__(self, name: str, args: LoadBalancersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:LoadBalancers", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.api = self._balancer(args, args.api, child)
        self.ingress = self._balancer(args, args.ingress, child)
        # TLS passes through to the ingress controller (certificates stay in the cluster); the floating IP on the
        # VIP port is the only public address besides the bastion's.
        self.ingress_ip = openstack.networking.FloatingIp(
            f"{args.stack}-ingress-lb",
            pool=args.external_network,
            port_id=self.ingress.vip_port_id,
            description="public HTTPS ingress",
            tags=tags(args.stack, "ingress-lb"),
            opts=child,
        )
        self.register_outputs({"apiAddress": self.api.vip_address, "ingressAddress": self.ingress_ip.address})

    def _balancer(
        self, args: LoadBalancersArgs, backend: TcpBackend, opts: pulumi.ResourceOptions
    ) -> openstack.loadbalancer.LoadBalancer:
        name, label = f"{args.stack}-{backend.role}", tags(args.stack, backend.role)
        balancer = openstack.loadbalancer.LoadBalancer(
            name,
            name=name,
            vip_subnet_id=args.subnet_id,
            flavor_id=args.flavor,
            security_group_ids=[args.security_groups[backend.role]],
            tags=label,
            opts=opts,
        )
        listener = openstack.loadbalancer.Listener(
            name,
            name=name,
            loadbalancer_id=balancer.id,
            protocol="TCP",
            protocol_port=backend.listen_port,
            allowed_cidrs=backend.allowed_cidrs,
            tags=label,
            opts=opts,
        )
        pool = openstack.loadbalancer.Pool(
            name, name=name, listener_id=listener.id, protocol="TCP", lb_method="ROUND_ROBIN", tags=label, opts=opts
        )
        openstack.loadbalancer.Monitor(
            name, name=name, pool_id=pool.id, type="TCP", delay=5, timeout=3, max_retries=3, opts=opts
        )
        for index, address in enumerate(backend.members, start=1):
            openstack.loadbalancer.Member(
                f"{name}-{index}",
                pool_id=pool.id,
                address=address,
                protocol_port=backend.member_port,
                tags=label,
                opts=opts,
            )
        return balancer


def api_backend(members: Sequence[pulumi.Input[str]], nodes_cidr: str) -> TcpBackend:
    return TcpBackend("internal-lb", KUBE_API, KUBE_API, members, allowed_cidrs=[nodes_cidr])


def ingress_backend(members: Sequence[pulumi.Input[str]], node_port: int) -> TcpBackend:
    return TcpBackend("ingress-lb", HTTPS, node_port, members, allowed_cidrs=None)

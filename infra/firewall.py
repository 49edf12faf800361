"""Which traffic each role accepts and sends: a pure plan, turned into security group rules by `security_groups`.

Keeping the plan free of Pulumi lets the tests read it directly and keeps every port decision in one place.
Ingress comes only from other roles' groups or from declared CIDRs; the one world-open rule is HTTPS on the
public ingress load balancer.
"""

from __future__ import annotations

from dataclasses import dataclass

from auxip_platform.infra.config import OpenStackConfig

WORLD = "0.0.0.0/0"
SSH = 22
KUBE_API = 6443
HTTPS = 443
NODE_EXPORTER = 9100
#: Between cluster nodes: kubelet (API server -> kubelet), etcd peers, Cilium VXLAN and health checks.
KUBELET = 10250
ETCD = (2379, 2380)
VXLAN = 8472
CNI_HEALTH = 4240
#: FreeIPA: Kerberos (88, 464), LDAP/LDAPS (389, 636) and its HTTPS API, for clients and replicas alike.
IPA_TCP = (88, 389, 443, 464, 636)
IPA_UDP = (88, 464)
VM_ROLES = ("bastion", "control-plane", "worker", "ipa", "monitoring", "hosted")
CLUSTER = ("control-plane", "worker")


@dataclass(frozen=True)
class RuleSpec:
    role: str
    direction: str  # ingress | egress
    protocol: str | None  # tcp | udp | None (any)
    port_min: int | None
    port_max: int | None
    remote_cidr: str | None = None
    remote_role: str | None = None
    why: str = ""


def _tcp(role: str, port: int, *, cidr: str | None = None, peer: str | None = None, why: str) -> RuleSpec:
    return RuleSpec(role, "ingress", "tcp", port, port, remote_cidr=cidr, remote_role=peer, why=why)


def _udp(role: str, port: int, *, peer: str, why: str) -> RuleSpec:
    return RuleSpec(role, "ingress", "udp", port, port, remote_role=peer, why=why)


def group_roles(config: OpenStackConfig) -> list[str]:
    """The security groups a stack needs (no group for a role with no member)."""
    roles = ["bastion", "control-plane", "worker", "ipa"]
    if config.monitoring is not None:
        roles.append("monitoring")
    if config.hosted_vms:
        roles.append("hosted")
    return [*roles, "internal-lb", "ingress-lb"]


def ingress_rules(config: OpenStackConfig, admin_cidrs: list[str]) -> list[RuleSpec]:
    roles = group_roles(config)
    services = str(config.network.services_cidr)
    rules = [_tcp("bastion", SSH, cidr=cidr, why=f"SSH from admin network {cidr}") for cidr in admin_cidrs]
    # Everything but the bastion takes SSH only from the bastion (Ansible's ProxyJump).
    rules += [_tcp(role, SSH, peer="bastion", why="SSH through the bastion") for role in roles if role in VM_ROLES[1:]]
    # The API: only from the bastion (kubectl) and the internal LB, whose amphorae reach the members from the
    # services subnet (nothing but LB VIPs lives there). Nodes, control plane included, use the LB's VIP.
    rules += [
        _tcp("control-plane", KUBE_API, peer="bastion", why="kubectl from the bastion"),
        _tcp("control-plane", KUBE_API, cidr=services, why="internal load balancer to the API"),
        _tcp("control-plane", ETCD[0], peer="control-plane", why="etcd clients"),
        _tcp("control-plane", ETCD[1], peer="control-plane", why="etcd peers"),
    ]
    for role in CLUSTER:
        for peer in CLUSTER:
            rules += [
                _tcp(role, KUBELET, peer=peer, why=f"kubelet from {peer}"),
                _udp(role, VXLAN, peer=peer, why=f"CNI overlay from {peer}"),
                _tcp(role, CNI_HEALTH, peer=peer, why=f"CNI health from {peer}"),
            ]
    rules.append(_tcp("worker", config.ingress_node_port, cidr=services, why="public LB to the ingress controller"))
    for peer in ("bastion", *CLUSTER, "ipa"):
        rules += [_tcp("ipa", port, peer=peer, why=f"FreeIPA from {peer}") for port in IPA_TCP]
        rules += [_udp("ipa", port, peer=peer, why=f"Kerberos from {peer}") for port in IPA_UDP]
    if "monitoring" in roles:
        rules += [
            _tcp(role, NODE_EXPORTER, peer="monitoring", why="node exporter scrape")
            for role in roles
            if role in VM_ROLES
        ]
        rules += [_tcp("monitoring", port, peer="bastion", why="Prometheus/Grafana UI") for port in (9090, 3000)]
    for app in config.hosted_vms:
        rules += [_tcp("hosted", port, peer="worker", why=f"{app.name} behind the ingress") for port in app.ports]
    rules += [_tcp("internal-lb", KUBE_API, peer=peer, why=f"API VIP from {peer}") for peer in ("bastion", *CLUSTER)]
    rules.append(_tcp("ingress-lb", HTTPS, cidr=WORLD, why="public HTTPS (the only world-open port)"))
    return rules


def egress_rules(config: OpenStackConfig) -> list[RuleSpec]:
    """With `restrictEgress`, each group may only reach the private network, DNS and the declared destinations."""
    if not config.restrict_egress:
        return []
    private = [str(config.network.nodes_cidr), str(config.network.services_cidr)]
    rules = []
    for role in group_roles(config):
        rules += [
            RuleSpec(role, "egress", None, None, None, remote_cidr=cidr, why="private network") for cidr in private
        ]
        if role in VM_ROLES:
            for server in config.network.dns_nameservers:
                rules += [
                    RuleSpec(role, "egress", proto, 53, 53, remote_cidr=f"{server}/32", why="DNS")
                    for proto in ("udp", "tcp")
                ]
            for extra in config.egress:
                rules += [
                    RuleSpec(
                        role, "egress", extra.protocol, port, port, remote_cidr=str(extra.cidr), why=extra.description
                    )
                    for port in extra.ports
                ]
    return rules

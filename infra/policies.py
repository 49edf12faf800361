"""Network and security rules as pure functions: (resource type, inputs) -> violations.

The same functions run in the unit tests (over what the program registers under mocks) and in the Pulumi policy pack
(`infra/policy`, `pulumi preview --policy-pack infra/policy`), so a rule cannot drift between the two. Inputs use the
provider's property names (camelCase), which is what both the mocks and the policy engine hand over.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from auxip_platform.infra.tags import ROLES, STATEFUL_ROLES, labels_of

SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
SEC_GROUP = "openstack:networking/secGroup:SecGroup"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
INSTANCE = "openstack:compute/instance:Instance"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
LISTENER = "openstack:loadbalancer/listener:Listener"
CONTAINER = "openstack:objectstorage/container:Container"
#: Associating a floating IP after the fact would dodge the tag check on the floating IP: not allowed at all.
FLOATING_IP_ASSOCIATIONS = (
    "openstack:networking/floatingIpAssociate:FloatingIpAssociate",
    "openstack:compute/floatingIpAssociate:FloatingIpAssociate",
)
#: Types that carry stack and role (tags, metadata, or for rules the description prefix).
LABELLED = {
    "openstack:networking/network:Network",
    "openstack:networking/subnet:Subnet",
    "openstack:networking/router:Router",
    "openstack:networking/port:Port",
    SEC_GROUP,
    SEC_GROUP_RULE,
    FLOATING_IP,
    INSTANCE,
    "openstack:blockstorage/volume:Volume",
    "openstack:loadbalancer/loadBalancer:LoadBalancer",
    LISTENER,
    "openstack:loadbalancer/pool:Pool",
    "openstack:loadbalancer/member:Member",
    CONTAINER,
}
#: Types the OpenStack APIs give no tags, metadata or free text to: exempt, and listed so that a new type used by the
#: program fails the tagging policy until someone decides which list it belongs to.
UNLABELLABLE = {
    "openstack:compute/keypair:Keypair",
    SERVER_GROUP,
    "openstack:networking/routerInterface:RouterInterface",
    "openstack:compute/volumeAttach:VolumeAttach",
    "openstack:loadbalancer/monitor:Monitor",
    "openstack:dns/zone:Zone",
    "openstack:dns/recordSet:RecordSet",
}
PUBLIC_IP_ROLES = {"bastion", "ingress-lb"}
SSH, KUBE_API, HTTPS = 22, 6443, 443


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str


Check = Callable[[str, Mapping[str, Any]], list[str]]


def _covers(inputs: Mapping[str, Any], port: int) -> bool:
    """Whether an ingress rule lets `port` through (no protocol or no port range means every port)."""
    if inputs.get("protocol") in (None, "", "any"):
        return True
    if inputs.get("protocol") not in ("tcp", "6"):
        return False
    low, high = inputs.get("portRangeMin"), inputs.get("portRangeMax")
    if low in (None, 0) and high in (None, 0):
        return True
    return int(low or 0) <= port <= int(high or 65535)


def _is_world(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return True  # an unparseable source is as bad as the world


def _world_open(inputs: Mapping[str, Any]) -> bool:
    # Neutron treats a rule without remote prefix and without remote group as open to everyone.
    if inputs.get("remoteGroupId") or inputs.get("remoteAddressGroupId"):
        return False
    prefix = inputs.get("remoteIpPrefix")
    return prefix in (None, "") or _is_world(prefix)


def _ingress(resource_type: str, inputs: Mapping[str, Any]) -> bool:
    return resource_type == SEC_GROUP_RULE and inputs.get("direction") == "ingress"


def no_public_ssh(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    """SSH is reachable from addresses only on the bastion, from named networks; elsewhere only from groups."""
    if not _ingress(resource_type, inputs) or not _covers(inputs, SSH):
        return []
    role = labels_of(dict(inputs)).get("role")
    if _world_open(inputs):
        return [f"{role or 'unknown'} group opens SSH (22) to the world"]
    if inputs.get("remoteIpPrefix") and role != "bastion":
        return [f"{role or 'unknown'} group takes SSH from {inputs['remoteIpPrefix']}: only the bastion may"]
    return []


def no_world_open_ports(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    """Nothing is open to the world but HTTPS on the public ingress load balancer."""
    role = labels_of(dict(inputs)).get("role")
    if _ingress(resource_type, inputs) and _world_open(inputs):
        exact_https = (
            inputs.get("protocol") == "tcp" and inputs.get("portRangeMin") == inputs.get("portRangeMax") == HTTPS
        )
        if not (role == "ingress-lb" and exact_https):
            ports = f"{inputs.get('portRangeMin')}-{inputs.get('portRangeMax')}"
            return [f"{role or 'unknown'} group opens {inputs.get('protocol') or 'any'} {ports} to the world"]
    if resource_type == LISTENER:
        cidrs = inputs.get("allowedCidrs") or []
        if (not cidrs or any(_is_world(c) for c in cidrs)) and not (
            role == "ingress-lb" and inputs.get("protocolPort") == HTTPS
        ):
            return [f"{role or 'unknown'} listener on port {inputs.get('protocolPort')} accepts any client"]
    if resource_type == CONTAINER and ".r:*" in str(inputs.get("containerRead") or ""):
        return [f"container {inputs.get('name')} is publicly readable"]
    return []


def kube_api_internal(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    """The Kubernetes API takes traffic only from groups (bastion, nodes) or private ranges (the internal LB)."""
    if not _ingress(resource_type, inputs) or not _covers(inputs, KUBE_API):
        return []
    prefix = inputs.get("remoteIpPrefix")
    if inputs.get("remoteGroupId") and not prefix:
        return []
    if prefix and not _is_world(prefix) and ipaddress.ip_network(str(prefix), strict=False).is_private:
        return []
    return [f"the Kubernetes API (6443) is reachable from {prefix or 'anyone'}"]


def control_plane_spread(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    """Control-plane and IPA VMs sit in a server group; server groups spread (control plane: hard anti-affinity)."""
    if resource_type == SERVER_GROUP:
        policy = str(inputs.get("policies") or "")
        if policy not in ("anti-affinity", "soft-anti-affinity"):
            return [f"server group {inputs.get('name')} has policy {policy or 'none'}: VMs would not be spread"]
        if str(inputs.get("name") or "").endswith("control-plane") and policy != "anti-affinity":
            return [f"server group {inputs.get('name')} must be hard anti-affinity (etcd quorum)"]
        return []
    if resource_type == INSTANCE and labels_of(dict(inputs)).get("role") in ("control-plane", "ipa"):
        hints = inputs.get("schedulerHints") or []
        if not any((hint or {}).get("group") for hint in hints):
            return [f"{inputs.get('name')} is not in an anti-affinity server group"]
    return []


def stateful_volumes_kept(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    """Volumes of stateful VMs are not deleted when the VM is."""
    if resource_type != INSTANCE or labels_of(dict(inputs)).get("role") not in STATEFUL_ROLES:
        return []
    return [
        f"{inputs.get('name')}: block device {index} is deleted on termination"
        for index, device in enumerate(inputs.get("blockDevices") or [])
        if (device or {}).get("deleteOnTermination") is True
    ]


def tagged_with_stack_and_role(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    if not resource_type.startswith("openstack:") or resource_type in UNLABELLABLE:
        return []
    if resource_type not in LABELLED:
        return [f"{resource_type} is unknown to the tagging policy: add it to LABELLED or UNLABELLABLE"]
    labels = labels_of(dict(inputs))
    # Rules have no tags: their role comes from the description and their stack from their group.
    needed = ("role",) if resource_type == SEC_GROUP_RULE else ("stack", "role")
    missing = [key for key in needed if not labels.get(key)]
    problems = [f"{inputs.get('name') or resource_type} has no {key} tag" for key in missing]
    role = labels.get("role")
    if role and role not in ROLES and not role.startswith("bucket-"):
        problems.append(f"{inputs.get('name') or resource_type} has unknown role {role!r}")
    return problems


def floating_ips_only_where_allowed(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    if resource_type in FLOATING_IP_ASSOCIATIONS:
        return ["floating IPs are attached through the tagged floating IP's port_id, not an association"]
    if resource_type == FLOATING_IP and labels_of(dict(inputs)).get("role") not in PUBLIC_IP_ROLES:
        return [f"floating IP for role {labels_of(dict(inputs)).get('role')!r}: only the bastion and ingress LB"]
    return []


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    check: Check


POLICIES = (
    Policy("no-public-ssh", "SSH from addresses only to the bastion, never from the world", no_public_ssh),
    Policy("no-world-open-ports", "Nothing world-open but HTTPS on the ingress load balancer", no_world_open_ports),
    Policy("kube-api-internal", "Kubernetes API only from the bastion, nodes and internal LB", kube_api_internal),
    Policy("control-plane-spread", "Control plane and IPA spread across hypervisors", control_plane_spread),
    Policy("stateful-volumes-kept", "Stateful VMs keep their volumes on termination", stateful_volumes_kept),
    Policy("tagged-stack-and-role", "Every resource says its stack and role", tagged_with_stack_and_role),
    Policy(
        "floating-ips-restricted", "Floating IPs only on the bastion and ingress LB", floating_ips_only_where_allowed
    ),
)


def violations(resource_type: str, inputs: Mapping[str, Any]) -> list[Violation]:
    """Every policy's findings for one resource."""
    return [Violation(p.name, message) for p in POLICIES for message in p.check(resource_type, inputs)]

"""The `infra` section of the stack configuration: where the machines come from and how they are sized.

Either `provider: openstack` (Pulumi creates network, security groups, VMs, load balancers and buckets) or
`provider: existing` (machines provisioned elsewhere are described statically). Both end up as the same host
records, so the Ansible inventory and everything after it is identical.

OpenStack credentials never appear here: the provider reads them from `clouds.yaml` / `OS_*` variables at run time.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from auxip.validation import repeated, require_unique

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: Public keys only: a private key pasted by mistake does not match (and the plaintext-credential check names it).
SSH_PUBLIC_KEY = r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+( \S+)?$"
#: `key=value:Effect` or `key:Effect`, as kubeadm/kubectl take them.
TAINT = r"^[a-z0-9./-]+(=[A-Za-z0-9._-]+)?:(NoSchedule|PreferNoSchedule|NoExecute)$"

Role = Literal["bastion", "control-plane", "worker", "ipa", "monitoring", "hosted"]
BucketPurpose = Literal["products", "backups", "thanos", "logs"]


class InfraModel(BaseModel):
    # Same conventions as StackConfig (kept local so that this module does not import its parent model).
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def _not_world(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if network.prefixlen == 0:
        raise ValueError("0.0.0.0/0 is not allowed here: name the networks that need access")
    return network


class VmGroupSpec(InfraModel):
    """A group of identical VMs. `count: 1` for a role meant to be redundant needs `haExemptionReason`."""

    flavor: str = Field(min_length=1)
    count: int = Field(ge=1, le=20)
    #: Size of the boot volume when `bootFromVolume` is on (GiB).
    root_volume_size: int = Field(default=20, ge=10, le=1000)
    #: A separate Cinder volume for the role's state; it survives the VM (never deleted on termination).
    data_volume_size: int | None = Field(default=None, ge=1, le=16000)
    ha_exemption_reason: str | None = None


class ControlPlaneSpec(VmGroupSpec):
    @model_validator(mode="after")
    def _odd_and_ha(self) -> ControlPlaneSpec:
        if self.count % 2 == 0:
            raise ValueError(f"count {self.count}: etcd needs an odd number of control-plane nodes for quorum")
        if self.count < 3 and not (self.ha_exemption_reason or "").strip():
            raise ValueError("fewer than 3 control-plane nodes: set haExemptionReason to say why")
        return self


class IpaSpec(VmGroupSpec):
    count: int = Field(default=2, ge=1, le=4)

    @model_validator(mode="after")
    def _replicated(self) -> IpaSpec:
        if self.count < 2 and not (self.ha_exemption_reason or "").strip():
            raise ValueError("a single FreeIPA server has no replica: set haExemptionReason to say why")
        return self


def _taint_syntax(value: list[str]) -> list[str]:
    for taint in value:
        if not re.match(TAINT, taint):
            raise ValueError(f"taint {taint!r} must look like key=value:NoSchedule")
    return value


class WorkerPool(VmGroupSpec):
    name: str = Field(pattern=DNS_LABEL, max_length=20)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list)

    _taints = field_validator("taints")(classmethod(lambda cls, value: _taint_syntax(value)))


class HostedVm(VmGroupSpec):
    """A VM-hosted application (not in Kubernetes); the ingress workers reach it on `ports`."""

    name: str = Field(pattern=DNS_LABEL, max_length=20)
    ports: list[int] = Field(min_length=1)

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, value: list[int]) -> list[int]:
        bad = [port for port in value if not 1 <= port <= 65535 or port == 22]
        if bad:
            raise ValueError(f"ports {bad}: must be 1-65535 and not 22 (SSH is only ever allowed from the bastion)")
        return value


class EgressRule(InfraModel):
    """An outbound destination beyond the private network (package mirror, object storage endpoint, NTP)."""

    cidr: ipaddress.IPv4Network
    protocol: Literal["tcp", "udp"] = "tcp"
    ports: list[int] = Field(min_length=1)
    description: str = Field(min_length=1)


class NetworkConfig(InfraModel):
    #: VMs live here (bastion included).
    nodes_cidr: ipaddress.IPv4Network
    #: Only load balancer VIPs live here, which is why it can be a source in security group rules.
    services_cidr: ipaddress.IPv4Network
    dns_nameservers: list[ipaddress.IPv4Address] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint_private(self) -> NetworkConfig:
        for key, net in (("nodesCidr", self.nodes_cidr), ("servicesCidr", self.services_cidr)):
            if not net.is_private:
                raise ValueError(f"{key} {net} is not a private range")
        if self.nodes_cidr.overlaps(self.services_cidr):
            raise ValueError(f"nodesCidr {self.nodes_cidr} overlaps servicesCidr {self.services_cidr}")
        return self


class DnsConfig(InfraModel):
    #: A Designate zone, fully qualified (trailing dot), e.g. `auxip.example.eu.`
    zone: str = Field(pattern=r"^([a-z0-9-]+\.)+$")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    ttl: int = Field(default=300, ge=60)


class Bucket(InfraModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    purpose: BucketPurpose
    versioning: bool = False


class OpenStackConfig(InfraModel):
    #: The provider network floating IPs come from (OVH `Ext-Net`, CloudFerro `external`, OTC `admin_external_net`).
    external_network: str = Field(min_length=1)
    #: Image and flavors by name, so that one config reads the same on every OpenStack cloud.
    image: str = Field(min_length=1)
    network: NetworkConfig
    boot_from_volume: bool = False
    #: Remove the default allow-all egress rules; only the private network, DNS and `egress` stay reachable.
    #: Off only for clouds whose Neutron ignores egress rules.
    restrict_egress: bool = True
    egress: list[EgressRule] = Field(default_factory=list)
    #: The ingress controller's NodePort on the workers that the public load balancer forwards HTTPS to.
    ingress_node_port: int = Field(default=30443, ge=30000, le=32767)
    #: Octavia flavor (optional: clouds with a single flavor do not need it).
    load_balancer_flavor: str | None = None
    dns: DnsConfig | None = None
    bastion: VmGroupSpec
    control_plane: ControlPlaneSpec
    worker_pools: list[WorkerPool] = Field(min_length=1)
    ipa: IpaSpec
    monitoring: VmGroupSpec | None = None
    hosted_vms: list[HostedVm] = Field(default_factory=list)
    buckets: list[Bucket] = Field(min_length=1)

    @field_validator("bastion")
    @classmethod
    def _one_bastion(cls, value: VmGroupSpec) -> VmGroupSpec:
        if value.count != 1:
            raise ValueError("the bastion is the single SSH entry point: count must be 1")
        return value

    @field_validator("worker_pools", "hosted_vms")
    @classmethod
    def _unique_names(cls, value: list[WorkerPool] | list[HostedVm]) -> list[WorkerPool] | list[HostedVm]:
        require_unique([item.name for item in value], "names")
        return value

    @field_validator("buckets")
    @classmethod
    def _every_purpose_once(cls, value: list[Bucket]) -> list[Bucket]:
        purposes = [bucket.purpose for bucket in value]
        missing = sorted({"products", "backups", "thanos", "logs"} - set(purposes))
        duplicates = repeated(purposes)
        if missing or duplicates:
            raise ValueError(f"one bucket per purpose: missing {missing}, duplicated {duplicates}")
        return value


class ExistingHost(InfraModel):
    """A machine provisioned elsewhere (bare metal, another cloud), reachable on `address` from the bastion."""

    name: str = Field(pattern=DNS_LABEL)
    role: Role
    address: ipaddress.IPv4Address
    #: Only the bastion has one: it is the single SSH entry point.
    public_address: ipaddress.IPv4Address | None = None
    #: Worker pool (role worker) or application name (role hosted).
    group: str | None = Field(default=None, pattern=DNS_LABEL)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list)

    _taints = field_validator("taints")(classmethod(lambda cls, value: _taint_syntax(value)))


class InfraConfig(InfraModel):
    provider: Literal["openstack", "existing"]
    #: Where administrators connect from: the only sources allowed to reach the bastion's SSH port.
    admin_cidrs: list[ipaddress.IPv4Network] = Field(min_length=1)
    #: The login user cloud-init creates (or that exists on existing hosts) and Ansible connects as.
    ssh_user: str = Field(default="auxip-admin", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    ssh_public_keys: list[str] = Field(min_length=1)
    openstack: OpenStackConfig | None = None
    existing_hosts: list[ExistingHost] = Field(default_factory=list)

    @field_validator("admin_cidrs")
    @classmethod
    def _admin_not_world(cls, value: list[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
        return [_not_world(net) for net in value]

    @field_validator("ssh_public_keys")
    @classmethod
    def _public_keys(cls, value: list[str]) -> list[str]:
        for index, key in enumerate(value):
            if not re.match(SSH_PUBLIC_KEY, key.strip()):
                raise ValueError(f"entry {index} is not an SSH public key (ssh-ed25519/ecdsa/rsa)")
        return [key.strip() for key in value]

    @model_validator(mode="after")
    def _provider_section(self) -> InfraConfig:
        if self.provider == "openstack":
            if self.openstack is None or self.existing_hosts:
                raise ValueError("provider openstack needs the `openstack` section and no `existingHosts`")
        else:
            if self.openstack is not None or not self.existing_hosts:
                raise ValueError("provider existing needs `existingHosts` and no `openstack` section")
            _check_existing(self.existing_hosts)
        return self


def _check_existing(hosts: list[ExistingHost]) -> None:
    names = [host.name for host in hosts]
    duplicates = repeated(names)
    if duplicates:
        raise ValueError(f"existingHosts: duplicate names {duplicates}")
    roles = [host.role for host in hosts]
    if roles.count("bastion") != 1:
        raise ValueError("existingHosts: exactly one host must have role bastion")
    if "control-plane" not in roles or "worker" not in roles:
        raise ValueError("existingHosts: at least one control-plane and one worker host are needed")
    for host in hosts:
        if host.public_address is not None and host.role != "bastion":
            raise ValueError(f"existingHosts: {host.name} has a publicAddress, only the bastion may")
        if host.role == "bastion" and host.public_address is None:
            raise ValueError(f"existingHosts: the bastion {host.name} needs publicAddress")
        if host.role in ("worker", "hosted") and host.group is None:
            raise ValueError(f"existingHosts: {host.name} ({host.role}) needs `group` (pool or application)")

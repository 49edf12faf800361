"""Everything the platform needs on a fresh OpenStack project, composed from the smaller components."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.config import InfraConfig, OpenStackConfig, VmGroupSpec
from auxip_platform.infra.dns import Dns, DnsArgs
from auxip_platform.infra.firewall import egress_rules, group_roles, ingress_rules
from auxip_platform.infra.inventory import HostRecord
from auxip_platform.infra.load_balancers import LoadBalancers, LoadBalancersArgs, api_backend, ingress_backend
from auxip_platform.infra.network import Network, NetworkArgs
from auxip_platform.infra.security_groups import SecurityGroups, SecurityGroupsArgs
from auxip_platform.infra.servers import VmGroup, VmGroupArgs
from auxip_platform.infra.storage import Buckets, BucketsArgs
from auxip_platform.infra.tags import tags


@dataclass(frozen=True)
class OpenStackInfraArgs:
    stack: str
    config: InfraConfig


class OpenStackInfra(pulumi.ComponentResource):
    def __init__(self, name: str, args: OpenStackInfraArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:OpenStackInfra", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack, infra = args.stack, args.config
        if infra.openstack is None:
            raise ValueError("OpenStackInfra needs the `openstack` section (InfraConfig guarantees it)")
        cloud: OpenStackConfig = infra.openstack
        self._stack, self._infra, self._cloud, self._child = stack, infra, cloud, child

        self.network = Network(f"{stack}-network", NetworkArgs(stack, cloud.network, cloud.external_network), child)
        self.security = SecurityGroups(
            f"{stack}-security-groups",
            SecurityGroupsArgs(
                stack,
                group_roles(cloud),
                ingress_rules(cloud, [str(cidr) for cidr in infra.admin_cidrs]) + egress_rules(cloud),
                cloud.restrict_egress,
            ),
            child,
        )
        self.key_pair = openstack.compute.Keypair(
            f"{stack}-admin", name=f"{stack}-admin", public_key=infra.ssh_public_keys[0], opts=child
        )
        self._image_id = (
            openstack.images.get_image_output(
                name=cloud.image, most_recent=True, opts=pulumi.InvokeOptions(parent=self)
            ).id
            if cloud.boot_from_volume
            else None
        )

        groups = [self._group("bastion", "bastion", cloud.bastion, None)]
        # Hard anti-affinity: losing one hypervisor must never take etcd quorum (or both IPA replicas) with it.
        groups.append(self._group("control-plane", "control-plane", cloud.control_plane, "anti-affinity"))
        for pool in cloud.worker_pools:
            host_vars = {"node_pool": pool.name, "node_labels": dict(pool.labels), "node_taints": list(pool.taints)}
            # Soft: a pool larger than the hypervisor count must still schedule.
            groups.append(
                self._group("worker", f"worker-{pool.name}", pool, "soft-anti-affinity", pool.name, host_vars)
            )
        groups.append(self._group("ipa", "ipa", cloud.ipa, "anti-affinity"))
        if cloud.monitoring is not None:
            groups.append(self._group("monitoring", "monitoring", cloud.monitoring, "soft-anti-affinity"))
        for app in cloud.hosted_vms:
            groups.append(self._group("hosted", f"app-{app.name}", app, "soft-anti-affinity", app.name))
        bastion = groups[0]

        self.bastion_ip = openstack.networking.FloatingIp(
            f"{stack}-bastion",
            pool=cloud.external_network,
            port_id=bastion.ports[0].id,
            description="bastion: the single SSH entry point",
            tags=tags(stack, "bastion"),
            opts=child,
        )
        addresses = {
            role: [i.access_ip_v4 for g in groups if g.role == role for i in g.instances]
            for role in ("control-plane", "worker")
        }
        self.load_balancers = LoadBalancers(
            f"{stack}-load-balancers",
            LoadBalancersArgs(
                stack=stack,
                subnet_id=self.network.subnets["services"].id,
                security_groups={role: self.security.groups[role].id for role in ("internal-lb", "ingress-lb")},
                external_network=cloud.external_network,
                flavor=cloud.load_balancer_flavor,
                api=api_backend(addresses["control-plane"], str(cloud.network.nodes_cidr)),
                ingress=ingress_backend(addresses["worker"], cloud.ingress_node_port),
            ),
            child,
        )
        self.buckets = Buckets(f"{stack}-buckets", BucketsArgs(stack, cloud.buckets), child)
        if cloud.dns is not None:
            Dns(
                f"{stack}-dns",
                DnsArgs(
                    stack,
                    cloud.dns,
                    {"ingress": self.load_balancers.ingress_ip.address, "bastion": self.bastion_ip.address},
                ),
                child,
            )

        records = [host for group in groups for host in group.hosts]
        # The bastion's record gains its public address once the floating IP exists.
        records[0] = pulumi.Output.all(records[0], self.bastion_ip.address).apply(
            lambda pair: replace(pair[0], public_address=pair[1])
        )
        self.hosts: pulumi.Output[list[HostRecord]] = pulumi.Output.all(*records)
        self.api_address = self.load_balancers.api.vip_address
        self.ingress_address = self.load_balancers.ingress_ip.address
        self.register_outputs(
            {
                "bastionAddress": self.bastion_ip.address,
                "apiAddress": self.api_address,
                "ingressAddress": self.ingress_address,
            }
        )

    def _group(
        self,
        role: str,
        prefix: str,
        spec: VmGroupSpec,
        affinity: str | None,
        group: str | None = None,
        host_vars: dict[str, object] | None = None,
    ) -> VmGroup:
        return VmGroup(
            f"{self._stack}-{prefix}",
            VmGroupArgs(
                stack=self._stack,
                role=role,
                spec=spec,
                prefix=prefix,
                image=self._cloud.image,
                image_id=self._image_id,
                key_pair=self.key_pair.name,
                network_id=self.network.network.id,
                subnet_id=self.network.subnets["nodes"].id,
                security_group_id=self.security.groups[role].id,
                ssh_user=self._infra.ssh_user,
                ssh_public_keys=self._infra.ssh_public_keys,
                affinity=affinity,
                boot_from_volume=self._cloud.boot_from_volume,
                group=group,
                host_vars=dict(host_vars or {}),
            ),
            self._child,
        )

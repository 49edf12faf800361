"""A group of identical VMs of one role: server group, ports, instances and optional data volumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.cloud_init import user_data
from auxip_platform.infra.config import VmGroupSpec
from auxip_platform.infra.inventory import HostRecord
from auxip_platform.infra.tags import STATEFUL_ROLES, metadata, tags


@dataclass(frozen=True)
class VmGroupArgs:
    stack: str
    role: str
    spec: VmGroupSpec
    #: Name prefix of the VMs (`<stack>-<prefix>-<n>`) and the worker pool / hosted application name.
    prefix: str
    image: str
    key_pair: pulumi.Input[str]
    network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    ssh_user: str
    ssh_public_keys: list[str]
    #: "anti-affinity" (hard: refuse to co-locate), "soft-anti-affinity" (spread when possible) or None.
    affinity: str | None
    boot_from_volume: bool
    #: Image id, only needed to boot from a volume.
    image_id: pulumi.Input[str] | None = None
    group: str | None = None
    host_vars: dict[str, Any] = field(default_factory=dict)


class VmGroup(pulumi.ComponentResource):
    def __init__(self, name: str, args: VmGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:VmGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = args.role
        self.server_group = (
            openstack.compute.ServerGroup(
                f"{args.stack}-{args.prefix}", name=f"{args.stack}-{args.prefix}", policies=args.affinity, opts=child
            )
            if args.affinity
            else None
        )
        self.ports: list[openstack.networking.Port] = []
        self.instances: list[openstack.compute.Instance] = []
        self.hosts: list[pulumi.Output[HostRecord]] = []
        for index in range(1, args.spec.count + 1):
            self._vm(f"{args.stack}-{args.prefix}-{index}", args, child)
        self.register_outputs({"addresses": [instance.access_ip_v4 for instance in self.instances]})

    def _vm(self, hostname: str, args: VmGroupArgs, opts: pulumi.ResourceOptions) -> None:
        # A port of our own carries the security group, so the instance never lands on the default group.
        port = openstack.networking.Port(
            hostname,
            name=hostname,
            network_id=args.network_id,
            fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=args.subnet_id)],
            security_group_ids=[args.security_group_id],
            tags=tags(args.stack, args.role),
            opts=opts,
        )
        stateful = args.role in STATEFUL_ROLES
        block_devices = None
        if args.boot_from_volume:
            block_devices = [
                openstack.compute.InstanceBlockDeviceArgs(
                    source_type="image",
                    uuid=args.image_id,
                    destination_type="volume",
                    volume_size=args.spec.root_volume_size,
                    boot_index=0,
                    # Stateful roles keep their disk if the VM is deleted: etcd or the IPA directory can be
                    # recovered from it. Workers are cattle.
                    delete_on_termination=not stateful,
                )
            ]
        instance = openstack.compute.Instance(
            hostname,
            name=hostname,
            flavor_name=args.spec.flavor,
            image_name=None if args.boot_from_volume else args.image,
            block_devices=block_devices,
            key_pair=args.key_pair,
            networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
            scheduler_hints=(
                [openstack.compute.InstanceSchedulerHintArgs(group=self.server_group.id)] if self.server_group else None
            ),
            user_data=user_data(hostname, args.ssh_user, args.ssh_public_keys),
            metadata=metadata(args.stack, args.role),
            opts=opts,
        )
        if args.spec.data_volume_size:
            volume = openstack.blockstorage.Volume(
                f"{hostname}-data",
                name=f"{hostname}-data",
                size=args.spec.data_volume_size,
                metadata=metadata(args.stack, args.role),
                # Replacing the VM must never take the data with it.
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=stateful)),
            )
            openstack.compute.VolumeAttach(f"{hostname}-data", instance_id=instance.id, volume_id=volume.id, opts=opts)
        self.ports.append(port)
        self.instances.append(instance)
        self.hosts.append(
            instance.access_ip_v4.apply(
                lambda address, name=hostname: HostRecord(
                    name=name, role=args.role, address=address, group=args.group, host_vars=dict(args.host_vars)
                )
            )
        )

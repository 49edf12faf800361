"""Infra layer: vendor-agnostic VMs (OpenStack or existing hosts) and the generated Ansible inventory."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pulumi

from auxip_platform.infra.config import InfraConfig
from auxip_platform.infra.existing_hosts import ExistingHosts, ExistingHostsArgs
from auxip_platform.infra.inventory import HostRecord, render_inventory, write_inventory
from auxip_platform.infra.openstack_infra import OpenStackInfra, OpenStackInfraArgs


def inventory_path(stack: str) -> Path:
    """Where the program writes the inventory, relative to the project directory Pulumi runs it from."""
    return Path("build") / "inventory" / f"{stack}.yml"


@dataclass(frozen=True)
class InfraArgs:
    environment: str
    #: Prefix of every resource name; defaults to the environment (the program passes the stack name).
    stack: str | None = None
    #: None: the stack declares no machines (the layer stays an empty component).
    config: InfraConfig | None = None


class Infra(pulumi.ComponentResource):
    """Parent of every infrastructure resource of the stack (networks, security groups, VMs, load balancers)."""

    def __init__(self, name: str, args: InfraArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:Infra", name, None, opts)
        self.environment = args.environment
        self.inventory: pulumi.Output[str] | None = None
        self.hosts: pulumi.Output[list[HostRecord]] | None = None
        #: The host records as plain maps (what the stack exports).
        self.host_table: pulumi.Output[list[dict[str, object]]] | None = None
        outputs: dict[str, object] = {"environment": args.environment}
        stack = args.stack or args.environment
        if args.config is not None:
            child = pulumi.ResourceOptions(parent=self)
            machines: OpenStackInfra | ExistingHosts
            if args.config.provider == "openstack":
                machines = OpenStackInfra(f"{stack}-openstack", OpenStackInfraArgs(stack, args.config), child)
            else:
                machines = ExistingHosts(f"{stack}-existing", ExistingHostsArgs(args.config.existing_hosts), child)
            user = args.config.ssh_user
            self.hosts = machines.hosts
            self.inventory = machines.hosts.apply(lambda hosts: render_inventory(hosts, user))
            if not pulumi.runtime.is_dry_run():
                # Written on `pulumi up` (addresses are unknown during preview) for ansible-playbook and testinfra.
                path = inventory_path(stack)
                self.inventory.apply(lambda text: write_inventory(path, text))
            outputs["inventory"] = self.inventory
            self.host_table = self.hosts.apply(lambda hosts: [asdict(host) for host in hosts])
            outputs["hosts"] = self.host_table
        self.register_outputs(outputs)

"""Infra layer: vendor-agnostic VMs (OpenStack or existing hosts) and the generated Ansible inventory."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class InfraArgs:
    environment: str


class Infra(pulumi.ComponentResource):
    """Parent of every infrastructure resource of the stack (networks, security groups, VMs, load balancers)."""

    def __init__(self, name: str, args: InfraArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:Infra", name, None, opts)
        self.environment = args.environment
        self.register_outputs({"environment": args.environment})

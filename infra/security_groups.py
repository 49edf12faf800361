"""One security group per role, with exactly the rules of the firewall plan."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.firewall import RuleSpec
from auxip_platform.infra.tags import rule_description, tags


@dataclass(frozen=True)
class SecurityGroupsArgs:
    stack: str
    roles: list[str]
    rules: list[RuleSpec]
    #: False keeps the cloud's default allow-all egress (only for clouds that ignore egress rules).
    restrict_egress: bool


class SecurityGroups(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.groups: dict[str, openstack.networking.SecGroup] = {
            role: openstack.networking.SecGroup(
                f"{args.stack}-{role}",
                name=f"{args.stack}-{role}",
                description=f"AUXIP {args.stack} {role}",
                delete_default_rules=args.restrict_egress,
                tags=tags(args.stack, role),
                opts=child,
            )
            for role in args.roles
        }
        counters: dict[str, int] = {}
        for rule in args.rules:
            index = counters[rule.role] = counters.get(rule.role, -1) + 1
            self._rule(f"{args.stack}-{rule.role}-{rule.direction}-{index}", rule, child)
        self.register_outputs({"groups": {role: group.id for role, group in self.groups.items()}})

    def _rule(self, name: str, rule: RuleSpec, opts: pulumi.ResourceOptions) -> None:
        openstack.networking.SecGroupRule(
            name,
            security_group_id=self.groups[rule.role].id,
            direction=rule.direction,
            ethertype="IPv4",
            protocol=rule.protocol,
            port_range_min=rule.port_min,
            port_range_max=rule.port_max,
            remote_ip_prefix=rule.remote_cidr,
            remote_group_id=self.groups[rule.remote_role].id if rule.remote_role else None,
            description=rule_description(rule.role, rule.why),
            opts=opts,
        )

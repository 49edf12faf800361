"""Machines provisioned elsewhere (bare metal, another cloud): the same host records, no cloud resources."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from auxip_platform.infra.config import ExistingHost
from auxip_platform.infra.inventory import HostRecord


def host_records(hosts: list[ExistingHost]) -> list[HostRecord]:
    records = []
    for host in hosts:
        host_vars: dict[str, object] = {}
        if host.role == "worker":
            host_vars = {"node_pool": host.group, "node_labels": dict(host.labels), "node_taints": list(host.taints)}
        records.append(
            HostRecord(
                name=host.name,
                role=host.role,
                address=str(host.address),
                public_address=str(host.public_address) if host.public_address else None,
                group=host.group,
                host_vars=host_vars,
            )
        )
    return records


@dataclass(frozen=True)
class ExistingHostsArgs:
    hosts: list[ExistingHost]


class ExistingHosts(pulumi.ComponentResource):
    """Registers the static description so that it shows in the stack like the OpenStack variant."""

    def __init__(self, name: str, args: ExistingHostsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:ExistingHosts", name, None, opts)
        records = host_records(args.hosts)
        self.hosts: pulumi.Output[list[HostRecord]] = pulumi.Output.from_input(records)
        bastion = next(r for r in records if r.role == "bastion")
        self.bastion_address = bastion.public_address
        self.register_outputs({"hosts": [r.name for r in records], "bastionAddress": bastion.public_address})

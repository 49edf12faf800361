"""Optional Designate zone with the public names: the ingress and the bastion."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.config import DnsConfig


@dataclass(frozen=True)
class DnsArgs:
    stack: str
    config: DnsConfig
    #: Record name (relative to the zone) -> public address.
    records: dict[str, pulumi.Input[str]]


class Dns(pulumi.ComponentResource):
    def __init__(self, name: str, args: DnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:Dns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zone = openstack.dns.Zone(
            f"{args.stack}-zone",
            name=args.config.zone,
            email=args.config.email,
            ttl=args.config.ttl,
            description=f"AUXIP {args.stack}",
            opts=child,
        )
        for record, address in args.records.items():
            openstack.dns.RecordSet(
                f"{args.stack}-{record}",
                zone_id=zone.id,
                name=f"{record}.{args.config.zone}",
                type="A",
                ttl=args.config.ttl,
                records=[address],
                description=f"AUXIP {args.stack}",
                opts=child,
            )
        self.register_outputs({"zone": zone.name})

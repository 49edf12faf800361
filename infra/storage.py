"""Object storage containers (Swift, S3-compatible on every supported cloud) for products, backups, Thanos, logs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from auxip_platform.infra.config import Bucket
from auxip_platform.infra.tags import metadata


@dataclass(frozen=True)
class BucketsArgs:
    stack: str
    buckets: list[Bucket]


class Buckets(pulumi.ComponentResource):
    def __init__(self, name: str, args: BucketsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:infra:Buckets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=True)  # products and backups outlive any stack update
        self.containers = {
            bucket.purpose: openstack.objectstorage.Container(
                f"{args.stack}-{bucket.purpose}",
                name=bucket.name,
                versioning=bucket.versioning,
                # No container_read: private. Access goes through EC2-style credentials issued per service.
                metadata=metadata(args.stack, f"bucket-{bucket.purpose}"),
                opts=child,
            )
            for bucket in args.buckets
        }
        self.register_outputs({"buckets": {p: c.name for p, c in self.containers.items()}})

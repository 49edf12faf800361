"""StorageClasses: where persistent volumes come from (Cinder CSI on OpenStack by default)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip_platform.platform.services.common import PART_OF
from auxip_platform.platform.services.config import StorageClassConfig

DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class StorageClassesArgs:
    classes: Sequence[StorageClassConfig]


class StorageClasses(pulumi.ComponentResource):
    def __init__(self, name: str, args: StorageClassesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:StorageClasses", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for spec in args.classes:
            k8s.storage.v1.StorageClass(
                spec.name,
                metadata={
                    "name": spec.name,
                    "labels": dict(PART_OF),
                    "annotations": {DEFAULT_ANNOTATION: "true" if spec.default else "false"},
                },
                provisioner=spec.provisioner,
                parameters=dict(spec.parameters) or None,
                reclaim_policy=spec.reclaim_policy,
                # Bound where the pod is scheduled: a volume in the wrong availability zone cannot be attached.
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=spec.allow_volume_expansion,
                opts=child,
            )
        self.register_outputs({"classes": [spec.name for spec in args.classes]})

"""What changes when the cluster is a Kubernetes API server without nodes (`auxip-platform:apiServerOnly`).

The suite's cluster tier runs `pulumi up` of the real program against a real kube-apiserver that has no kubelet,
scheduler or workload controllers: objects are stored, validated and admitted as in production, but no pod ever runs.
So nothing may wait for what only nodes produce. One stack transform states that, in one place:

- Kubernetes objects whose readiness needs pods, endpoints or a load balancer get `pulumi.com/skipAwait: "true"`
  (Pulumi's await logic would wait about ten minutes for each, then fail);
- Helm releases skip their await, are not atomic (atomic implies waiting), and run no hooks (a hook Job would never
  complete).

Everything else (the objects, their order, values, diffs, deletes) is exactly what a real stack does. The chart
source (a local directory instead of a chart repository) is the other half of this setting, in `ChartSource`.
"""

from __future__ import annotations

from typing import Any

import pulumi

SKIP_AWAIT = "pulumi.com/skipAwait"
RELEASE = "kubernetes:helm.sh/v3:Release"
#: Kinds whose await logic waits for pods, endpoints, volumes or load-balancer status.
WAITS_FOR_NODES = frozenset(
    {
        "apps/v1:Deployment",
        "apps/v1:StatefulSet",
        "apps/v1:DaemonSet",
        "apps/v1:ReplicaSet",
        "batch/v1:Job",
        "core/v1:Pod",
        "core/v1:Service",
        "core/v1:PersistentVolumeClaim",
        "networking.k8s.io/v1:Ingress",
    }
)


def _without_waits(type_: str, props: dict[str, Any]) -> dict[str, Any] | None:
    """The changed properties of a resource of `type_`, or None when it has no wait to skip."""
    if type_ == RELEASE:
        return {**props, "skipAwait": True, "atomic": False, "disableWebhooks": True}
    if type_.removeprefix("kubernetes:") not in WAITS_FOR_NODES:
        return None
    metadata = dict(props.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SKIP_AWAIT: "true"}
    return {**props, "metadata": metadata}


def skip_node_waits(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    changed = _without_waits(args.type_, dict(args.props)) if args.custom else None
    return pulumi.ResourceTransformResult(changed, args.opts) if changed is not None else None


def register() -> None:
    """Apply the transform to every resource the program registers from now on (components' children included)."""
    pulumi.runtime.register_resource_transform(skip_node_waits)

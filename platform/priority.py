"""The stack's PriorityClasses: which pods the scheduler keeps, and which it evicts first, when the cluster is full.

Values stay far below the built-in `system-cluster-critical` (2,000,000,000) and `system-node-critical`
(2,000,001,000), which only the CNI and the distribution's own pods use. Every workload names its class explicitly
(policy P8): the global default exists for objects this stack does not render (Helm charts' pods, a `kubectl run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

PLATFORM_CRITICAL = "auxip-platform-critical"
WORKLOAD_HIGH = "auxip-workload-high"
WORKLOAD_DEFAULT = "auxip-workload-default"
BATCH_LOW = "auxip-batch-low"

#: Built-in classes every cluster has; only system namespaces that say so may use them (policy P8).
SYSTEM_NODE_CRITICAL = "system-node-critical"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
BUILT_IN_CLASSES = frozenset({SYSTEM_NODE_CRITICAL, SYSTEM_CLUSTER_CRITICAL})

PreemptionPolicy = Literal["PreemptLowerPriority", "Never"]


@dataclass(frozen=True)
class PriorityClassSpec:
    name: str
    value: int
    preemption_policy: PreemptionPolicy
    description: str
    global_default: bool = False


#: From the most to the least important. Exactly one is the global default.
PRIORITY_CLASSES: tuple[PriorityClassSpec, ...] = (
    PriorityClassSpec(
        PLATFORM_CRITICAL,
        1_000_000,
        "PreemptLowerPriority",
        "Cluster services the platform cannot run without (ingress, certificates, registry, Kafka, operators, node "
        "agents): they preempt workloads rather than stay pending.",
    ),
    PriorityClassSpec(
        WORKLOAD_HIGH,
        100_000,
        "PreemptLowerPriority",
        "AUXIP services on the mission's critical path (ingestion, catalog, download API): may preempt batch pods.",
    ),
    PriorityClassSpec(
        WORKLOAD_DEFAULT,
        10_000,
        # A default-class pod waits for room instead of evicting anything: no pod preempts its own peers by default.
        "Never",
        "Default for workloads, hosted applications included: scheduled when there is room, never preempting.",
        global_default=True,
    ),
    PriorityClassSpec(
        BATCH_LOW,
        1_000,
        "Never",
        "Batch work that can wait or be restarted (reprocessing, exports, backups): the first to be preempted.",
    ),
)

#: The class names this stack declares.
DECLARED_CLASSES = frozenset(spec.name for spec in PRIORITY_CLASSES)


@dataclass(frozen=True)
class PriorityClassesArgs:
    classes: tuple[PriorityClassSpec, ...] = PRIORITY_CLASSES

    def __post_init__(self) -> None:
        defaults = [spec.name for spec in self.classes if spec.global_default]
        if len(defaults) != 1:
            # Zero leaves unlabelled pods at priority 0, below every batch job; two is refused by the API server.
            raise ValueError(f"exactly one PriorityClass must be the global default, got {defaults or 'none'}")
        names = [spec.name for spec in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate PriorityClass names: {names}")


class PriorityClasses(pulumi.ComponentResource):
    """The cluster-scoped PriorityClasses of `args.classes`, as children of the component."""

    def __init__(
        self, name: str, args: PriorityClassesArgs | None = None, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("auxip:platform:PriorityClasses", name, None, opts)
        args = args or PriorityClassesArgs()
        child = pulumi.ResourceOptions(parent=self)
        self.classes = {
            spec.name: k8s.scheduling.v1.PriorityClass(
                spec.name,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=spec.name, labels={"app.kubernetes.io/part-of": "auxip"}),
                value=spec.value,
                global_default=spec.global_default,
                preemption_policy=spec.preemption_policy,
                description=spec.description,
                opts=child,
            )
            for spec in args.classes
        }
        self.register_outputs({"classes": sorted(self.classes)})

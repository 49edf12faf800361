"""A namespace's ResourceQuota and LimitRange, sized from a quota profile of the stack config.

The two go together: once a quota bounds `limits.cpu`, the API server rejects every pod whose containers do not set
that limit, and the LimitRange's defaults are what lets a container that sets nothing start at all.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from auxip_platform.infra.stack_config import QuotaProfile

core = k8s.core.v1
QUOTA_NAME = "quota"
LIMITS_NAME = "limits"
#: The quota that admits pods of a built-in `system-*` PriorityClass outside kube-system (see `critical_pods_quota`).
CRITICAL_PODS_NAME = "critical-pods"


def quota_hard(profile: QuotaProfile) -> dict[str, str]:
    hard = {
        "requests.cpu": profile.requests.cpu,
        "requests.memory": profile.requests.memory,
        "limits.cpu": profile.limits.cpu,
        "limits.memory": profile.limits.memory,
        "pods": str(profile.pods),
        "persistentvolumeclaims": str(profile.persistent_volume_claims),
        "services.loadbalancers": str(profile.load_balancers),
        "services.nodeports": str(profile.node_ports),
    }
    if profile.storage:
        hard["requests.storage"] = profile.storage
    return hard


def namespace_quota(
    namespace: str, profile: QuotaProfile, opts: pulumi.ResourceOptions, labels: dict[str, str] | None = None
) -> tuple[core.ResourceQuota, core.LimitRange]:
    """The ResourceQuota and the container LimitRange of `namespace`; `opts` should parent them to the namespace."""
    labels = {"app.kubernetes.io/part-of": "auxip", **(labels or {})}
    quota = core.ResourceQuota(
        f"{namespace}-quota",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=QUOTA_NAME, namespace=namespace, labels=labels),
        spec=core.ResourceQuotaSpecArgs(hard=quota_hard(profile)),
        opts=opts,
    )
    container = profile.container
    limits = core.LimitRange(
        f"{namespace}-limits",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=LIMITS_NAME, namespace=namespace, labels=labels),
        spec=core.LimitRangeSpecArgs(
            limits=[
                core.LimitRangeItemArgs(
                    type="Container",
                    default={"cpu": container.limits.cpu, "memory": container.limits.memory},
                    default_request={"cpu": container.requests.cpu, "memory": container.requests.memory},
                    max={"cpu": container.max.cpu, "memory": container.max.memory},
                )
            ]
        ),
        opts=opts,
    )
    return quota, limits


def critical_pods_quota(
    namespace: str, priority_class: str, pods: int, opts: pulumi.ResourceOptions
) -> core.ResourceQuota:
    """A quota scoped to one PriorityClass: where the API server limits the `system-*` classes to kube-system
    (the ResourceQuota admission `limitedResources` setting, as GKE and some distributions configure it), pods of
    that class are admitted elsewhere only in a namespace holding such a quota. Harmless where it is not configured."""
    return core.ResourceQuota(
        f"{namespace}-{CRITICAL_PODS_NAME}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=CRITICAL_PODS_NAME, namespace=namespace, labels={"app.kubernetes.io/part-of": "auxip"}
        ),
        spec=core.ResourceQuotaSpecArgs(
            hard={"pods": str(pods)},
            scope_selector=core.ScopeSelectorArgs(
                match_expressions=[
                    core.ScopedResourceSelectorRequirementArgs(
                        scope_name="PriorityClass", operator="In", values=[priority_class]
                    )
                ]
            ),
        ),
        opts=opts,
    )

"""What a stack really created, read back from a live API server as the plain dicts the offline checks take.

The same functions then judge both: `platform/policy.py` runs on the offline render and, through this module, on
the objects the real `pulumi up` left in the cluster (server-side defaults and all).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The kinds the security policy looks at (P1..P8).
POLICY_KINDS = (
    ("v1", "Namespace"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
)
#: Field managers of what the stack writes: the Pulumi provider's server-side apply, and Helm (run by the provider).
OUR_MANAGERS = ("pulumi-kubernetes", "helm", "pulumi-resource-kubernetes")


def _managers(obj: dict[str, Any]) -> set[str]:
    return {str(entry.get("manager")) for entry in (obj.get("metadata") or {}).get("managedFields") or []}


def written_by_stack(obj: dict[str, Any]) -> bool:
    """Created or changed by `pulumi up` (directly or through a Helm release), not by the API server or a
    controller (bootstrap RBAC, default ServiceAccounts, ...)."""
    return any(manager.startswith(OUR_MANAGERS) for manager in _managers(obj))


def live_objects(api_client: Any, kinds: Iterable[tuple[str, str]] = POLICY_KINDS) -> list[dict[str, Any]]:
    """Every object of `kinds` in the cluster, in every namespace, as camelCase dicts with apiVersion and kind."""
    from kubernetes.dynamic import DynamicClient

    dynamic = DynamicClient(api_client)
    found = []
    for api_version, kind in kinds:
        listing = dynamic.resources.get(api_version=api_version, kind=kind).get().to_dict()
        for item in listing.get("items") or []:
            found.append({"apiVersion": api_version, "kind": kind, **item})
    return found

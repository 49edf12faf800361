"""API access for a workload's service account: a Role and a RoleBinding in its own namespace, nothing cluster-wide.

Most workloads need none (the hosted applications mount no token at all); one that does lists exactly the
resources and verbs it calls. The rules are checked here, when the program runs, so that a too-wide grant fails
`pulumi preview` with the rule named, before policy P5 would reject the rendered objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

#: Verbs a workload may be granted. `escalate`, `bind` and `impersonate` let an account grant itself more than its
#: Role says; `deletecollection` empties a resource type in one call: none is ever a workload's.
WORKLOAD_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete"})


@dataclass(frozen=True)
class AccessRule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    #: Narrow the rule to these objects (a ConfigMap by name); empty means every object of the resources.
    resource_names: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        found = []
        for name, values in (("apiGroups", self.api_groups), ("resources", self.resources), ("verbs", self.verbs)):
            if not values:
                found.append(f"{name} is empty")
            if "*" in values:
                found.append(f"{name} contains '*' (list what the workload calls)")
        if "*" in self.resource_names:
            found.append("resourceNames contains '*'")
        if extra := sorted(set(self.verbs) - WORKLOAD_VERBS - {"*"}):
            found.append(f"verbs {', '.join(extra)} are not granted to workloads")
        return found


@dataclass(frozen=True)
class WorkloadAccessArgs:
    namespace: str
    service_account: str
    rules: tuple[AccessRule, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.rules:
            raise ValueError(f"{self.namespace}/{self.service_account}: no rules; a workload without API access gets "
                             "no Role at all (and automountServiceAccountToken: false)")  # fmt: skip
        problems = [f"rules[{i}]: {p}" for i, rule in enumerate(self.rules) for p in rule.problems()]
        if problems:
            raise ValueError(f"{self.namespace}/{self.service_account}: " + "; ".join(problems))


class WorkloadAccess(pulumi.ComponentResource):
    """A Role holding `args.rules` and a RoleBinding of it to the service account, both in its namespace."""

    def __init__(self, name: str, args: WorkloadAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:WorkloadAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rbac = k8s.rbac.v1
        metadata = k8s.meta.v1.ObjectMetaArgs(
            name=args.service_account, namespace=args.namespace, labels={"app.kubernetes.io/part-of": "auxip"}
        )
        self.role = rbac.Role(
            f"{name}-role",
            metadata=metadata,
            rules=[
                rbac.PolicyRuleArgs(
                    api_groups=list(rule.api_groups),
                    resources=list(rule.resources),
                    verbs=list(rule.verbs),
                    resource_names=list(rule.resource_names) or None,
                )
                for rule in args.rules
            ],
            opts=child,
        )
        self.binding = rbac.RoleBinding(
            f"{name}-binding",
            metadata=metadata,
            role_ref=rbac.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=args.service_account),
            subjects=[rbac.SubjectArgs(kind="ServiceAccount", name=args.service_account, namespace=args.namespace)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role]),
        )
        self.register_outputs({"role": args.service_account, "namespace": args.namespace})

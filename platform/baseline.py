"""In-cluster baseline: namespaces with Pod Security Admission labels, default-deny network policies and quotas,
the system namespaces of the cluster services, and the PriorityClasses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from auxip_platform.infra.stack_config import DEFAULT_QUOTA_PROFILES, NamespaceConfig, QuotaProfile
from auxip_platform.platform.priority import BUILT_IN_CLASSES, PriorityClasses
from auxip_platform.platform.quotas import critical_pods_quota, namespace_quota
from auxip_platform.platform.system_namespaces import SYSTEM_LABEL, SystemNamespace, managed_system_namespaces

#: The cluster DNS service every namespace may reach once everything else is denied.
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}


#: The profile of a namespace whose config names none.
DEFAULT_QUOTA_PROFILE = "default"


@dataclass(frozen=True)
class BaselineArgs:
    kubernetes_version: str
    namespaces: list[NamespaceConfig]
    #: `kubernetes.quotaProfiles` (the built-in ones merged with the stack's).
    quota_profiles: Mapping[str, QuotaProfile] = field(default_factory=lambda: dict(DEFAULT_QUOTA_PROFILES))
    #: The cluster services' namespaces to create: all those this stack manages, unless a stack narrows them.
    system_namespaces: Sequence[SystemNamespace] = field(default_factory=managed_system_namespaces)


def pod_security_labels(level: str, kubernetes_version: str) -> dict[str, str]:
    """Enforce, audit and warn at the same level, pinned to the cluster's minor version."""
    labels = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    return labels


def namespace_with_default_deny(
    ns: NamespaceConfig,
    kubernetes_version: str,
    opts: pulumi.ResourceOptions,
    labels: dict[str, str] | None = None,
) -> k8s.core.v1.Namespace:
    """A namespace with Pod Security labels, a default-deny NetworkPolicy and an egress rule to cluster DNS.

    The policies are children of the namespace; `labels` are added to the namespace's own.
    """
    annotations = {"auxip.esa.int/pod-security-exemption": ns.exemption_reason} if ns.exemption_reason else {}
    namespace = k8s.core.v1.Namespace(
        ns.name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=ns.name,
            labels={
                "app.kubernetes.io/part-of": "auxip",
                **(labels or {}),
                **pod_security_labels(ns.pod_security, kubernetes_version),
            },
            annotations=annotations or None,
        ),
        opts=opts,
    )
    in_namespace = pulumi.ResourceOptions(parent=namespace)
    k8s.networking.v1.NetworkPolicy(
        f"{ns.name}-default-deny",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=ns.name),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(pod_selector={}, policy_types=["Ingress", "Egress"]),
        opts=in_namespace,
    )
    k8s.networking.v1.NetworkPolicy(
        f"{ns.name}-allow-dns",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-dns", namespace=ns.name),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector={},
            policy_types=["Egress"],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels={"kubernetes.io/metadata.name": DNS_NAMESPACE}
                            ),
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=DNS_POD_LABELS),
                        )
                    ],
                    ports=[
                        k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=53)
                        for protocol in ("UDP", "TCP")
                    ],
                )
            ],
        ),
        opts=in_namespace,
    )
    return namespace


def as_namespace_config(system: SystemNamespace) -> NamespaceConfig:
    """The system namespace as the namespace helper takes it: its level, and its reason as the exemption."""
    return NamespaceConfig(name=system.name, pod_security=system.pod_security, exemption_reason=system.reason)


class Baseline(pulumi.ComponentResource):
    """One namespace per entry and per system namespace, each with default-deny ingress and egress, an egress rule to
    cluster DNS, a ResourceQuota and a LimitRange; and the stack's PriorityClasses."""

    def __init__(self, name: str, args: BaselineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:Baseline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        version, profiles = args.kubernetes_version, args.quota_profiles
        self.priority_classes = PriorityClasses(f"{name}-priority", opts=child)
        self.namespaces = []
        for ns in args.namespaces:
            namespace = namespace_with_default_deny(ns, version, child)
            profile = profiles[ns.quota or DEFAULT_QUOTA_PROFILE]  # the stack config checks the name exists
            namespace_quota(ns.name, profile, pulumi.ResourceOptions(parent=namespace))
            self.namespaces.append(namespace)
        #: By name, for the cluster services to depend on (`depends_on=[baseline.system_namespaces[KONG]]`).
        self.system_namespaces: dict[str, k8s.core.v1.Namespace] = {}
        for system in args.system_namespaces:
            if not system.managed:
                raise ValueError(f"{system.name!r} belongs to the distribution: the baseline does not create it")
            namespace = namespace_with_default_deny(
                as_namespace_config(system), version, child, labels={SYSTEM_LABEL: "system"}
            )
            inside = pulumi.ResourceOptions(parent=namespace)
            profile = profiles[system.quota_profile]
            namespace_quota(system.name, profile, inside)
            if system.priority_class in BUILT_IN_CLASSES:
                critical_pods_quota(system.name, system.priority_class, profile.pods, inside)
            self.system_namespaces[system.name] = namespace
        self.register_outputs(
            {
                "namespaces": [ns.name for ns in args.namespaces],
                "systemNamespaces": list(self.system_namespaces),
                "priorityClasses": sorted(self.priority_classes.classes),
            }
        )

"""In-cluster baseline: namespaces with Pod Security Admission labels and default-deny network policies."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip_platform.infra.stack_config import NamespaceConfig

#: The cluster DNS service every namespace may reach once everything else is denied.
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}


@dataclass(frozen=True)
class BaselineArgs:
    kubernetes_version: str
    namespaces: list[NamespaceConfig]


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


class Baseline(pulumi.ComponentResource):
    """One namespace per entry, each with default-deny ingress and egress plus an egress rule to cluster DNS."""

    def __init__(self, name: str, args: BaselineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:Baseline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespaces = [namespace_with_default_deny(ns, args.kubernetes_version, child) for ns in args.namespaces]
        self.register_outputs({"namespaces": [ns.name for ns in args.namespaces]})

"""The namespaces of the cluster services, each with its Pod Security level and, when not restricted, the reason.

The reasons live here, in code reviewed like code, rather than in stack YAML: an exemption is a property of the
software that runs in the namespace (Calico needs the host network whatever the stack), not of a stack.

Contract with the cluster services (`platform/services/`):

- The baseline (`platform/baseline.py`) creates every namespace listed here with `managed=True`: Pod Security labels,
  the exemption annotation, default-deny ingress and egress, egress to cluster DNS, a ResourceQuota and LimitRange
  sized from `kubernetes.quotaProfiles[<quota_profile>]`. A service must not create these namespaces itself; it takes
  the name from here (`SYSTEM_NAMESPACES[CERT_MANAGER].name`), depends on the baseline (or on
  `Baseline.system_namespaces[name]`), and adds the NetworkPolicies that open what its own pods need (webhooks from
  the API server, metrics scrapes, ...). Everything else stays denied.
- Its pods use `priority_class` (a class of `platform/priority.py`, or a built-in `system-*` class where the namespace
  says so: the baseline then adds the ResourceQuota that admits that class in the namespace).
- `kube-system` is declared with `managed=False`: the Kubernetes distribution creates and labels it and runs the
  control plane's static pods there. This stack never creates, relabels or deploys into it (policy P3 rejects a
  workload in a namespace the stack does not create); it is listed so that its level and reason are on record and
  so that its service accounts count as system accounts for the RBAC rules (P5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from auxip_platform.platform.priority import PLATFORM_CRITICAL, SYSTEM_NODE_CRITICAL

PodSecurityLevel = Literal["restricted", "baseline", "privileged"]

# Namespace names, for imports (`SYSTEM_NAMESPACES[KONG]`) that fail loudly on a typo.
KUBE_SYSTEM = "kube-system"
TIGERA_OPERATOR = "tigera-operator"
CALICO_SYSTEM = "calico-system"
CERT_MANAGER = "cert-manager"
KONG = "kong"
KAFKA = "kafka"
CNPG_SYSTEM = "cnpg-system"
HARBOR = "harbor"
NODE_MONITORING = "node-monitoring"
LOGGING = "logging"

#: Label on every system namespace, so that NetworkPolicies and tests can tell them from workload namespaces.
SYSTEM_LABEL = "auxip.esa.int/namespace-class"


@dataclass(frozen=True)
class SystemNamespace:
    name: str
    #: What runs there (documentation, and the component to look at when the reason is questioned).
    runs: str
    pod_security: PodSecurityLevel
    #: Why the namespace cannot be `restricted`; None when it is restricted.
    reason: str | None
    #: The key of `kubernetes.quotaProfiles` its ResourceQuota and LimitRange are sized from.
    quota_profile: str
    #: The PriorityClass its pods use.
    priority_class: str
    #: False when the distribution owns the namespace (we neither create nor label it).
    managed: bool = True

    def __post_init__(self) -> None:
        # The same rule as `kubernetes.namespaces[]` in the stack config, checked at import time.
        if (self.pod_security == "restricted") != (self.reason is None):
            raise ValueError(f"system namespace {self.name!r}: a reason is required exactly when not restricted")


_DECLARED = [
    SystemNamespace(
        KUBE_SYSTEM,
        runs="the control plane's static pods, kube-proxy, CoreDNS (installed with the distribution)",
        pod_security="privileged",
        reason="owned by the Kubernetes distribution: static control-plane pods and kube-proxy use the host network "
        "and host paths; this stack does not create, relabel or deploy into it",
        quota_profile="node-agent",
        priority_class="system-cluster-critical",
        managed=False,
    ),
    SystemNamespace(
        TIGERA_OPERATOR,
        runs="the Tigera operator that installs and upgrades Calico",
        pod_security="privileged",
        reason="the operator runs with hostNetwork: it must reach the API server before any pod network exists",
        quota_profile="operator",
        priority_class=SYSTEM_NODE_CRITICAL,
    ),
    SystemNamespace(
        CALICO_SYSTEM,
        runs="calico-node (DaemonSet), Typha, calico-kube-controllers",
        pod_security="privileged",
        reason="calico-node is the CNI: a privileged container on the host network that writes the CNI binaries "
        "and configuration through hostPath mounts and programs the node's routes and iptables",
        quota_profile="node-agent",
        priority_class=SYSTEM_NODE_CRITICAL,
    ),
    SystemNamespace(
        CERT_MANAGER,
        runs="cert-manager controller, webhook and cainjector",
        pod_security="restricted",
        reason=None,
        quota_profile="operator",
        priority_class=PLATFORM_CRITICAL,
    ),
    SystemNamespace(
        KONG,
        runs="Kong ingress controller and gateway (the platform's reverse proxy)",
        pod_security="restricted",
        reason=None,
        quota_profile="ingress",
        priority_class=PLATFORM_CRITICAL,
    ),
    SystemNamespace(
        KAFKA,
        runs="the Strimzi operator and the AUXIP's Kafka cluster",
        pod_security="restricted",
        reason=None,
        quota_profile="data",
        priority_class=PLATFORM_CRITICAL,
    ),
    SystemNamespace(
        CNPG_SYSTEM,
        runs="the CloudNativePG operator (the PostgreSQL clusters live in their applications' namespaces)",
        pod_security="restricted",
        reason=None,
        quota_profile="operator",
        priority_class=PLATFORM_CRITICAL,
    ),
    SystemNamespace(
        HARBOR,
        runs="Harbor, the internal registry and mirror every image is pulled through",
        pod_security="restricted",
        reason=None,
        quota_profile="data",
        priority_class=PLATFORM_CRITICAL,
    ),
    SystemNamespace(
        NODE_MONITORING,
        runs="Prometheus node-exporter (DaemonSet)",
        pod_security="privileged",
        reason="node-exporter reads the node's /proc, /sys and root filesystem through hostPath mounts and uses "
        "hostNetwork and hostPID to report the node's own metrics",
        quota_profile="node-agent",
        priority_class=PLATFORM_CRITICAL,
    ),
    SystemNamespace(
        LOGGING,
        runs="Fluent Bit (DaemonSet), the node log collector",
        pod_security="privileged",
        reason="Fluent Bit reads container logs from the node's /var/log through hostPath mounts",
        quota_profile="node-agent",
        priority_class=PLATFORM_CRITICAL,
    ),
]

#: Every system namespace by name, in declaration order.
SYSTEM_NAMESPACES: dict[str, SystemNamespace] = {ns.name: ns for ns in _DECLARED}


def managed_system_namespaces() -> list[SystemNamespace]:
    """The system namespaces this stack creates (all but those the distribution owns)."""
    return [ns for ns in SYSTEM_NAMESPACES.values() if ns.managed]


def is_system_namespace(name: str) -> bool:
    return name in SYSTEM_NAMESPACES

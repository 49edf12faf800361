"""Building blocks the service components share: pinned Helm releases, NetworkPolicies, custom objects, pod settings."""

from __future__ import annotations

import importlib.metadata
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from auxip_platform.platform.services.versions import CHARTS, ChartPin

PART_OF = {"app.kubernetes.io/part-of": "auxip"}
PROVIDER_VERSION = importlib.metadata.version("pulumi_kubernetes")
NAME_LABEL = "kubernetes.io/metadata.name"

#: The restricted Pod Security profile, for charts' pod and container security contexts.
POD_SECURITY_CONTEXT: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
#: A UID and GID above 10000, which no account of the nodes has (checkov CKV_K8S_40), as the hosted applications run:
#: for charts whose images would otherwise run as a low UID.
RUN_AS_UNPRIVILEGED: dict[str, Any] = {"runAsUser": 10001, "runAsGroup": 10001}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str | None = None) -> dict[str, dict[str, str]]:
    """Requests and limits (memory limit = request unless given: a pod never grows past what it was scheduled for)."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit or memory},
    }


@dataclass(frozen=True)
class ChartSource:
    """Where the Helm charts come from: the upstream repositories of `versions.CHARTS` (nothing set), an internal
    mirror (`repository`: an HTTP(S) Helm repository or `oci://host/project`), or a directory of packaged charts
    named `<chart>-<version>.tgz` as `helm package` writes them (`directory`, the suite's cluster tier)."""

    repository: str | None = None
    directory: Path | None = None

    def release_args(self, pin: ChartPin) -> dict[str, Any]:
        """The `chart`, `version` and `repository_opts` arguments of a Release of `pin`."""
        if self.directory is not None:
            return {"chart": str(self.directory / f"{pin.chart}-{pin.version}.tgz")}
        base = (self.repository or pin.repository).rstrip("/")
        if base.startswith("oci://"):
            return {"chart": f"{base}/{pin.chart}", "version": pin.version}
        repository = k8s.helm.v3.RepositoryOptsArgs(repo=base)
        return {"chart": pin.chart, "version": pin.version, "repository_opts": repository}


def helm_release(
    name: str,
    chart_key: str,
    namespace: str,
    values: Mapping[str, Any],
    charts: ChartSource,
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a chart pinned in `versions.CHARTS`.

    `atomic` rolls a failed install or upgrade back instead of leaving half a release; the namespace is never
    created here (the baseline owns every system namespace).
    """
    return k8s.helm.v3.Release(
        name,
        k8s.helm.v3.ReleaseArgs(
            name=name,
            **charts.release_args(CHARTS[chart_key]),
            namespace=namespace,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            values=dict(values),
        ),
        opts=opts,
    )


def custom_object(
    name: str,
    api_version: str,
    kind: str,
    metadata: Mapping[str, Any],
    fields: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> pulumi.CustomResource:
    """A custom resource whose content is not under `spec` (Kong's plugins keep `plugin` and `config` at the top).

    `k8s.apiextensions.CustomResource` only carries `spec`; the provider takes any top-level field.
    """
    props = {"apiVersion": api_version, "kind": kind, "metadata": dict(metadata), **fields}
    # The provider version the SDK's own resources ask for: without it the engine creates a second, unversioned
    # default provider and every later preview plans to delete it (seen on the real engine).
    versioned = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=PROVIDER_VERSION))
    return pulumi.CustomResource(f"kubernetes:{api_version}:{kind}", name, props, versioned)


def custom_resource(
    name: str,
    api_version: str,
    kind: str,
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name, api_version=api_version, kind=kind, metadata=dict(metadata), spec=dict(spec), opts=opts
    )


# NetworkPolicies ---------------------------------------------------------------------------------------------------


def namespaces_peer(names: Iterable[str], pod_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": sorted(names)}]}
    }
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def ip_peers(cidrs: Iterable[ipaddress.IPv4Network]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": str(cidr)}} for cidr in cidrs]


def tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policy(
    name: str,
    namespace: str,
    pod_labels: Mapping[str, str] | None,
    opts: pulumi.ResourceOptions,
    ingress: Sequence[Mapping[str, Any]] = (),
    egress: Sequence[Mapping[str, Any]] = (),
) -> k8s.networking.v1.NetworkPolicy:
    """An allow policy (the namespace is default-deny): only the directions given rules are listed in policyTypes."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pod_labels)} if pod_labels else {}}
    types = []
    if ingress:
        types.append("Ingress")
        spec["ingress"] = [dict(rule) for rule in ingress]
    if egress:
        types.append("Egress")
        spec["egress"] = [dict(rule) for rule in egress]
    spec["policyTypes"] = types
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-{name}",
        metadata={"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        spec=spec,
        opts=opts,
    )


def api_server_egress(cidrs: Sequence[ipaddress.IPv4Network], port: int) -> dict[str, Any]:
    """Egress to the API server. Calico evaluates egress after kube-proxy's DNAT, so the rule names the API server's
    own addresses and port, not the `kubernetes` Service's ClusterIP and 443."""
    if not cidrs:
        raise ValueError(
            "clusterServices.apiServerCidrs: set it (the operators must reach the API server and no infra layer "
            "network says where it is)"
        )
    return {"to": ip_peers(cidrs), "ports": tcp(port)}


def webhook_ingress(cidrs: Sequence[ipaddress.IPv4Network], pod_cidr: ipaddress.IPv4Network, port: int) -> dict:
    """Ingress for an admission webhook called by the API server. With Calico overlay networking the call arrives
    from the control-plane node's address or, across nodes, from its tunnel address, which Calico allocates from
    the pod pool: both are allowed, on the webhook port only (TLS, the API server verifies the serving cert)."""
    return {"from": ip_peers([*cidrs, pod_cidr]), "ports": tcp(port)}

"""The control-plane configuration kubernetes_control_plane writes, checked against the CIS Kubernetes Benchmark.

The kubeadm configuration, audit policy, EncryptionConfiguration, AdmissionConfiguration and the kubeadm probe patch
are rendered offline from the role's own templates and defaults (auxip_testing.role_templates: ansible's Templar, no
playbook), so these checks run in milliseconds and cover what molecule cannot (the instance has no kubeadm): the
flags a real control plane would start with. One check per CIS control, ids of benchmark v1.10 (v1.9 numbers
sections 1.2-1.4 and 2 the same way); every check is a function that returns what is wrong, and is shown to fail on a
render broken by a bad override. The role's own guard on the encryption key is evaluated with the same Templar.

What stays for a real VM: that kubeadm accepts the files (`kubeadm config validate`, run by the role when kubeadm
is installed), that the components start with these flags, and what kube-bench then reports.
"""

from __future__ import annotations

import base64
import fnmatch
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from auxip_testing.cis_kubernetes import KUBELET_STRONG_CIPHERS
from auxip_testing.role_templates import ROLES_DIR, render_role_template, render_role_value, role_variables

ROLE = "kubernetes_control_plane"
P = "kubernetes_control_plane_"
DEFAULT_VERSION = "1.31"
#: CIS 1.2.29: the cipher suites the benchmark accepts for the API server.
CIS_APISERVER_CIPHERS = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
#: Stricter than both lists: forward secrecy and AEAD only (no CBC, no static RSA key exchange).
AEAD_ECDHE_PREFIXES = ("TLS_ECDHE_ECDSA_WITH_", "TLS_ECDHE_RSA_WITH_")
AEAD_SUFFIXES = ("_GCM_SHA256", "_GCM_SHA384", "_CHACHA20_POLY1305", "_CHACHA20_POLY1305_SHA256")
TLS_VERSIONS = ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13")
KUBEADM_TOP_LEVEL_KEYS = {
    "InitConfiguration": {
        "apiVersion",
        "kind",
        "bootstrapTokens",
        "nodeRegistration",
        "localAPIEndpoint",
        "certificateKey",
        "skipPhases",
        "patches",
        "timeouts",
        "dryRun",
    },
    "ClusterConfiguration": {
        "apiVersion",
        "kind",
        "etcd",
        "networking",
        "kubernetesVersion",
        "controlPlaneEndpoint",
        "apiServer",
        "controllerManager",
        "scheduler",
        "dns",
        "proxy",
        "certificatesDir",
        "imageRepository",
        "featureGates",
        "clusterName",
        "encryptionAlgorithm",
        "certificateValidityPeriod",
        "caCertificateValidityPeriod",
    },
}
#: The kinds and apiVersions each rendered file must hold, in order.
EXPECTED_KINDS = {
    "audit-policy.yaml.j2": [("audit.k8s.io/v1", "Policy")],
    "encryption-config.yaml.j2": [("apiserver.config.k8s.io/v1", "EncryptionConfiguration")],
    "admission-config.yaml.j2": [("apiserver.config.k8s.io/v1", "AdmissionConfiguration")],
}


def generated_key() -> str:
    """A fresh encryption key per call: 32 random bytes, base64 (no key is ever written into the repository)."""
    return base64.b64encode(os.urandom(32)).decode()


def base_overrides(**overrides: Any) -> dict[str, Any]:
    """What an inventory provides: the host name and the key from Vault; then the given role variables."""
    values: dict[str, Any] = {"inventory_hostname": "cp1", f"{P}encryption_key": generated_key()}
    values.update({name if name.startswith(P) else P + name: value for name, value in overrides.items()})
    return values


def documents(template: str, overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    rendered = render_role_template(ROLE, template, overrides)
    return [doc for doc in yaml.safe_load_all(rendered) if doc is not None]


def flags(component: Mapping[str, Any], api_version: str) -> dict[str, str]:
    """extraArgs as name -> value, from v1beta4's list of {name, value} or v1beta3's mapping (checking the shape)."""
    args = component.get("extraArgs", {})
    if api_version == "kubeadm.k8s.io/v1beta4":
        assert isinstance(args, list), "v1beta4 extraArgs must be a list of {name, value}"
        assert all(set(arg) == {"name", "value"} for arg in args), args
        names = [arg["name"] for arg in args]
        assert len(names) == len(set(names)), f"duplicate flags: {names}"
        result = {arg["name"]: arg["value"] for arg in args}
    else:
        assert isinstance(args, dict), "v1beta3 extraArgs must be a mapping"
        result = dict(args)
    assert all(isinstance(value, str) for value in result.values()), "every flag value must be a string"
    return result


@dataclass(frozen=True)
class ControlPlane:
    """Everything the role renders, parsed."""

    variables: dict[str, Any]
    init: dict[str, Any]
    cluster: dict[str, Any]
    kubelet: dict[str, Any]
    kube_proxy: dict[str, Any]
    apiserver: dict[str, str]
    controller_manager: dict[str, str]
    scheduler: dict[str, str]
    etcd: dict[str, str]
    audit_policy: dict[str, Any]
    encryption: dict[str, Any]
    admission: dict[str, Any]
    probe_patch: dict[str, Any] | None


#: Role variables the checks compare the flags with, resolved by the Templar.
RESOLVED = ("admission_plugins", "audit_policy_file", "encryption_config_file", "admission_config_file")


def render(**overrides: Any) -> ControlPlane:
    values = base_overrides(**overrides)
    init, cluster, kubelet, kube_proxy = documents("kubeadm-config.yaml.j2", values)
    api_version = cluster["apiVersion"]
    (audit_policy,) = documents("audit-policy.yaml.j2", values)
    (encryption,) = documents("encryption-config.yaml.j2", values)
    (admission,) = documents("admission-config.yaml.j2", values)
    patch_documents = documents("kube-apiserver+strategic.yaml.j2", values)
    resolved = render_role_value(ROLE, "{{ {" + ", ".join(f"'{n}': {P}{n}" for n in RESOLVED) + "} }}", values)
    return ControlPlane(
        variables=resolved,
        init=init,
        cluster=cluster,
        kubelet=kubelet,
        kube_proxy=kube_proxy,
        apiserver=flags(cluster["apiServer"], api_version),
        controller_manager=flags(cluster["controllerManager"], api_version),
        scheduler=flags(cluster["scheduler"], api_version),
        etcd=flags(cluster["etcd"]["local"], api_version),
        audit_policy=audit_policy,
        encryption=encryption,
        admission=admission,
        probe_patch=patch_documents[0] if patch_documents else None,
    )


@pytest.fixture(scope="module")
def default() -> ControlPlane:
    return render()


# ---------------------------------------------------------------------------------------------------------------
# Small helpers the checks share
# ---------------------------------------------------------------------------------------------------------------
def _list(flag_value: str | None) -> list[str]:
    return [item for item in (flag_value or "").split(",") if item]


def _has_flag(args: Mapping[str, str], name: str) -> str | None:
    return None if args.get(name) else f"--{name} is not set"


def _equals(args: Mapping[str, str], name: str, expected: str) -> str | None:
    value = args.get(name)
    return None if value == expected else f"--{name} is {value!r}, expected {expected!r}"


def _at_least(args: Mapping[str, str], name: str, minimum: int) -> str | None:
    value = args.get(name, "")
    return None if value.isdigit() and int(value) >= minimum else f"--{name} is {value!r}, expected >= {minimum}"


def _weak_ciphers(suites: list[str]) -> list[str]:
    return [s for s in suites if not (s.startswith(AEAD_ECDHE_PREFIXES) and s.endswith(AEAD_SUFFIXES))]


def _ciphers(args: Mapping[str, str], allowed: set[str]) -> str | None:
    suites = _list(args.get("tls-cipher-suites"))
    if not suites:
        return "--tls-cipher-suites is not set (Go's defaults include CBC and 3DES suites)"
    outside = sorted(set(suites) - allowed)
    if outside:
        return f"not in the CIS list: {outside}"
    weak = _weak_ciphers(suites)
    return f"not AEAD with forward secrecy: {weak}" if weak else None


def _tls_min(args: Mapping[str, str]) -> str | None:
    value = args.get("tls-min-version")
    if value not in TLS_VERSIONS or TLS_VERSIONS.index(value) < TLS_VERSIONS.index("VersionTLS12"):
        return f"--tls-min-version is {value!r}, expected VersionTLS12 or later"
    return None


def _first(*problems: str | None) -> str | None:
    return next((problem for problem in problems if problem), None)


def _volume_for(cp: ControlPlane, path: str, writable: bool) -> str | None:
    """The API server runs in a pod: a file its flags name must be inside one of kubeadm's extraVolumes."""
    for volume in cp.cluster["apiServer"].get("extraVolumes", []):
        if PurePosixPath(path).is_relative_to(volume["mountPath"]) and volume["hostPath"] == volume["mountPath"]:
            if writable and volume.get("readOnly", False):
                return f"{path} is on the read-only volume {volume['name']}"
            if not writable and not volume.get("readOnly", False):
                return f"{path} is on the writable volume {volume['name']}: configuration is mounted read-only"
            return None
    return f"{path} is on no extraVolume of the API server pod"


def _encryption_providers(cp: ControlPlane) -> list[str]:
    (entry,) = cp.encryption["resources"]
    return [next(iter(provider)) for provider in entry["providers"]]


def _encryption_keys(cp: ControlPlane) -> list[dict[str, str]]:
    (entry,) = cp.encryption["resources"]
    first = entry["providers"][0]
    keys: list[dict[str, str]] = next(iter(first.values())).get("keys", [])
    return keys


# ---------------------------------------------------------------------------------------------------------------
# CIS checks: control id -> function returning what is wrong, or None
# ---------------------------------------------------------------------------------------------------------------
Check = Callable[[ControlPlane], str | None]

CHECKS: dict[str, Check] = {
    # 1.2 API server
    "1.2.1-anonymous-auth-false": lambda cp: _equals(cp.apiserver, "anonymous-auth", "false"),
    "1.2.2-no-token-auth-file": lambda cp: "--token-auth-file is set" if "token-auth-file" in cp.apiserver else None,
    "1.2.3-deny-service-external-ips": lambda cp: (
        None
        if "DenyServiceExternalIPs" in _list(cp.apiserver.get("enable-admission-plugins"))
        else "DenyServiceExternalIPs is not enabled"
    ),
    "1.2.4-kubelet-client-certificate": lambda cp: _first(
        _has_flag(cp.apiserver, "kubelet-client-certificate"), _has_flag(cp.apiserver, "kubelet-client-key")
    ),
    "1.2.5-kubelet-certificate-authority": lambda cp: _first(
        _has_flag(cp.apiserver, "kubelet-certificate-authority"),
        # Without serving certificates signed by the cluster CA the API server cannot verify kubelets.
        None if cp.kubelet.get("serverTLSBootstrap") is True else "kubelets do not request CA-signed serving certs",
    ),
    "1.2.6-authorization-mode-not-always-allow": lambda cp: (
        "AlwaysAllow is an authorization mode"
        if "AlwaysAllow" in _list(cp.apiserver.get("authorization-mode"))
        else _has_flag(cp.apiserver, "authorization-mode")
    ),
    "1.2.7-authorization-mode-node": lambda cp: (
        None if "Node" in _list(cp.apiserver.get("authorization-mode")) else "Node is not an authorization mode"
    ),
    "1.2.8-authorization-mode-rbac": lambda cp: (
        None if "RBAC" in _list(cp.apiserver.get("authorization-mode")) else "RBAC is not an authorization mode"
    ),
    "1.2.9-event-rate-limit": lambda cp: _first(
        None
        if "EventRateLimit" in _list(cp.apiserver.get("enable-admission-plugins"))
        else "EventRateLimit is not enabled",
        None
        if any(plugin["name"] == "EventRateLimit" for plugin in cp.admission.get("plugins", []))
        else "EventRateLimit has no configuration",
    ),
    "1.2.10-no-always-admit": lambda cp: (
        "AlwaysAdmit is enabled" if "AlwaysAdmit" in _list(cp.apiserver.get("enable-admission-plugins")) else None
    ),
    "1.2.12-service-account-plugin": lambda cp: (
        "ServiceAccount is disabled"
        if "ServiceAccount" in _list(cp.apiserver.get("disable-admission-plugins"))
        else None
    ),
    "1.2.13-namespace-lifecycle-plugin": lambda cp: (
        "NamespaceLifecycle is disabled"
        if "NamespaceLifecycle" in _list(cp.apiserver.get("disable-admission-plugins"))
        else None
    ),
    "1.2.14-node-restriction": lambda cp: (
        None
        if "NodeRestriction" in _list(cp.apiserver.get("enable-admission-plugins"))
        else "NodeRestriction is not enabled"
    ),
    "1.2.15-apiserver-profiling-false": lambda cp: _equals(cp.apiserver, "profiling", "false"),
    "1.2.16-audit-log-path": lambda cp: _first(
        _has_flag(cp.apiserver, "audit-log-path"),
        _volume_for(cp, cp.apiserver.get("audit-log-path", "/"), writable=True),
    ),
    "1.2.17-audit-log-maxage": lambda cp: _at_least(cp.apiserver, "audit-log-maxage", 30),
    "1.2.18-audit-log-maxbackup": lambda cp: _at_least(cp.apiserver, "audit-log-maxbackup", 10),
    "1.2.19-audit-log-maxsize": lambda cp: _at_least(cp.apiserver, "audit-log-maxsize", 100),
    "1.2.20-request-timeout": lambda cp: _has_flag(cp.apiserver, "request-timeout"),
    "1.2.21-service-account-lookup": lambda cp: _equals(cp.apiserver, "service-account-lookup", "true"),
    "1.2.22-service-account-key-file": lambda cp: _has_flag(cp.apiserver, "service-account-key-file"),
    "1.2.23-etcd-certfile-keyfile": lambda cp: _first(
        _has_flag(cp.apiserver, "etcd-certfile"), _has_flag(cp.apiserver, "etcd-keyfile")
    ),
    "1.2.24-tls-cert-file": lambda cp: _first(
        _has_flag(cp.apiserver, "tls-cert-file"), _has_flag(cp.apiserver, "tls-private-key-file")
    ),
    "1.2.25-client-ca-file": lambda cp: _has_flag(cp.apiserver, "client-ca-file"),
    "1.2.26-etcd-cafile": lambda cp: _has_flag(cp.apiserver, "etcd-cafile"),
    "1.2.27-encryption-provider-config": lambda cp: _first(
        _equals(cp.apiserver, "encryption-provider-config", cp.variables["encryption_config_file"]),
        _volume_for(cp, cp.apiserver.get("encryption-provider-config", "/"), writable=False),
    ),
    # kube-bench reads the first provider after `providers:`; identity (plain text) may only come last.
    "1.2.28-encryption-providers": lambda cp: _first(
        None
        if _encryption_providers(cp)[0] in {"aescbc", "kms", "secretbox"}
        else f"the first provider is {_encryption_providers(cp)[0]}",
        None if _encryption_keys(cp) or _encryption_providers(cp)[0] == "kms" else "the first provider has no key",
    ),
    "1.2.29-apiserver-strong-ciphers": lambda cp: _first(
        _ciphers(cp.apiserver, CIS_APISERVER_CIPHERS), _tls_min(cp.apiserver)
    ),
    # 1.3 controller manager
    "1.3.1-terminated-pod-gc-threshold": lambda cp: _at_least(cp.controller_manager, "terminated-pod-gc-threshold", 1),
    "1.3.2-controller-manager-profiling-false": lambda cp: _equals(cp.controller_manager, "profiling", "false"),
    "1.3.3-use-service-account-credentials": lambda cp: _equals(
        cp.controller_manager, "use-service-account-credentials", "true"
    ),
    "1.3.4-service-account-private-key-file": lambda cp: _has_flag(
        cp.controller_manager, "service-account-private-key-file"
    ),
    "1.3.5-root-ca-file": lambda cp: _has_flag(cp.controller_manager, "root-ca-file"),
    "1.3.6-rotate-kubelet-server-certificate": lambda cp: (
        None
        if "RotateKubeletServerCertificate=true" in _list(cp.controller_manager.get("feature-gates"))
        else "RotateKubeletServerCertificate=true is not in --feature-gates"
    ),
    "1.3.7-controller-manager-bind-address": lambda cp: _equals(cp.controller_manager, "bind-address", "127.0.0.1"),
    # 1.4 scheduler
    "1.4.1-scheduler-profiling-false": lambda cp: _equals(cp.scheduler, "profiling", "false"),
    "1.4.2-scheduler-bind-address": lambda cp: _equals(cp.scheduler, "bind-address", "127.0.0.1"),
    # 2 etcd
    "2.1-etcd-cert-file-key-file": lambda cp: _first(_has_flag(cp.etcd, "cert-file"), _has_flag(cp.etcd, "key-file")),
    "2.2-etcd-client-cert-auth": lambda cp: _equals(cp.etcd, "client-cert-auth", "true"),
    "2.3-etcd-no-auto-tls": lambda cp: _equals(cp.etcd, "auto-tls", "false"),
    "2.4-etcd-peer-cert-file-key-file": lambda cp: _first(
        _has_flag(cp.etcd, "peer-cert-file"), _has_flag(cp.etcd, "peer-key-file")
    ),
    "2.5-etcd-peer-client-cert-auth": lambda cp: _equals(cp.etcd, "peer-client-cert-auth", "true"),
    "2.6-etcd-no-peer-auto-tls": lambda cp: _equals(cp.etcd, "peer-auto-tls", "false"),
    # etcd has its own CA, not the cluster CA the API server trusts for clients.
    "2.7-etcd-unique-ca": lambda cp: _first(
        _has_flag(cp.etcd, "trusted-ca-file"),
        "etcd trusts the cluster CA" if cp.etcd.get("trusted-ca-file") == cp.apiserver.get("client-ca-file") else None,
    ),
    # 3.2 audit policy
    "3.2.1-audit-policy": lambda cp: _first(
        _equals(cp.apiserver, "audit-policy-file", cp.variables["audit_policy_file"]),
        _volume_for(cp, cp.apiserver.get("audit-policy-file", "/"), writable=False),
        None if cp.audit_policy.get("rules") else "the audit policy has no rules",
    ),
    "3.2.2-audit-policy-covers-key-concerns": lambda cp: audit_policy_problem(cp.audit_policy),
    # 4.2 kubelet (the KubeletConfiguration kubeadm writes here and publishes for joining nodes)
    "4.2.1-kubelet-anonymous-auth-false": lambda cp: (
        None if cp.kubelet["authentication"]["anonymous"]["enabled"] is False else "kubelet accepts anonymous requests"
    ),
    "4.2.2-kubelet-authorization-webhook": lambda cp: (
        None if cp.kubelet["authorization"]["mode"] == "Webhook" else "kubelet authorization is not Webhook"
    ),
    "4.2.3-kubelet-client-ca-file": lambda cp: (
        None if cp.kubelet["authentication"]["x509"].get("clientCAFile") else "kubelet has no clientCAFile"
    ),
    "4.2.4-kubelet-read-only-port-0": lambda cp: (
        None if cp.kubelet.get("readOnlyPort") == 0 else f"readOnlyPort is {cp.kubelet.get('readOnlyPort')}"
    ),
    "4.2.5-kubelet-streaming-idle-timeout": lambda cp: (
        None
        if str(cp.kubelet.get("streamingConnectionIdleTimeout", "")).strip("0hms.") != ""
        else "streamingConnectionIdleTimeout is 0 or unset"
    ),
    "4.2.6-kubelet-make-iptables-util-chains": lambda cp: (
        None if cp.kubelet.get("makeIPTablesUtilChains") is True else "makeIPTablesUtilChains is not true"
    ),
    "4.2.8-kubelet-event-record-qps": lambda cp: (
        None if int(cp.kubelet.get("eventRecordQPS", -1)) >= 0 else "eventRecordQPS is not set"
    ),
    "4.2.10-kubelet-rotate-certificates": lambda cp: (
        None if cp.kubelet.get("rotateCertificates") is True else "rotateCertificates is not true"
    ),
    "4.2.11-kubelet-rotate-server-certificate": lambda cp: (
        None
        if cp.kubelet.get("featureGates", {}).get("RotateKubeletServerCertificate", True) is True
        else "RotateKubeletServerCertificate is false"
    ),
    "4.2.12-kubelet-strong-ciphers": lambda cp: _first(
        _ciphers({"tls-cipher-suites": ",".join(cp.kubelet.get("tlsCipherSuites", []))}, KUBELET_STRONG_CIPHERS),
        _tls_min({"tls-min-version": cp.kubelet.get("tlsMinVersion", "")}),
    ),
    "4.2.13-kubelet-pod-pids-limit": lambda cp: (
        None if int(cp.kubelet.get("podPidsLimit", -1)) > 0 else "podPidsLimit is not set"
    ),
    # 4.3.1 kube-proxy
    "4.3.1-kube-proxy-metrics-localhost": lambda cp: (
        None
        if str(cp.kube_proxy.get("metricsBindAddress", "127.0.0.1:10249")).startswith("127.0.0.1:")
        else f"kube-proxy metrics listen on {cp.kube_proxy.get('metricsBindAddress')}"
    ),
    # 5.2 Pod Security Standards: the cluster-wide default is restricted, exemptions only the system namespace.
    "5.2-pod-security-defaults": lambda cp: pod_security_problem(cp),
}


# ---------------------------------------------------------------------------------------------------------------
# Audit policy: a small evaluator of audit.k8s.io/v1 rules (first match wins), to ask what a request is logged at
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    verb: str
    user: str = "alice"
    groups: tuple[str, ...] = ("system:authenticated",)
    group: str = ""
    resource: str = ""
    namespace: str = "auxip"
    url: str = ""


LEVELS = ("None", "Metadata", "Request", "RequestResponse")


def audit_level(policy: Mapping[str, Any], request: Request) -> str:
    for rule in policy["rules"]:
        if "users" in rule and request.user not in rule["users"]:
            continue
        if "userGroups" in rule and not set(request.groups) & set(rule["userGroups"]):
            continue
        if "verbs" in rule and request.verb not in rule["verbs"]:
            continue
        if request.url:
            if "resources" in rule or "namespaces" in rule:
                continue
            if "nonResourceURLs" in rule and not any(fnmatch.fnmatch(request.url, p) for p in rule["nonResourceURLs"]):
                continue
        else:
            if "nonResourceURLs" in rule:
                continue
            if "namespaces" in rule and request.namespace not in rule["namespaces"]:
                continue
            if "resources" in rule and not any(
                entry.get("group", "") == request.group
                and ("resources" not in entry or request.resource in entry["resources"])
                for entry in rule["resources"]
            ):
                continue
        return str(rule["level"])
    return "None"


SECRET_READ = Request("get", group="", resource="secrets", namespace="kube-system")
#: Requests and the level the policy must log them at.
AUDIT_EXPECTATIONS: list[tuple[str, Request, str]] = [
    ("secret-read-in-kube-system", SECRET_READ, "Metadata"),
    ("secret-write", Request("update", group="", resource="secrets"), "Metadata"),
    ("configmap-write", Request("create", group="", resource="configmaps"), "Metadata"),
    ("token-request", Request("create", group="", resource="serviceaccounts/token"), "Metadata"),
    ("tokenreview", Request("create", group="authentication.k8s.io", resource="tokenreviews"), "Metadata"),
    (
        "clusterrolebinding-create",
        Request("create", group="rbac.authorization.k8s.io", resource="clusterrolebindings"),
        "RequestResponse",
    ),
    ("role-delete", Request("delete", group="rbac.authorization.k8s.io", resource="roles"), "RequestResponse"),
    ("impersonation", Request("impersonate", group="", resource="users"), "RequestResponse"),
    (
        "webhook-registration",
        Request("create", group="admissionregistration.k8s.io", resource="validatingwebhookconfigurations"),
        "RequestResponse",
    ),
    ("pod-exec", Request("create", group="", resource="pods/exec"), "Metadata"),
    ("pod-create", Request("create", group="", resource="pods"), "Request"),
    ("networkpolicy-delete", Request("delete", group="networking.k8s.io", resource="networkpolicies"), "Request"),
    ("pod-list", Request("list", group="", resource="pods"), "Metadata"),
    ("healthz", Request("get", url="/healthz"), "None"),
    ("livez-subpath", Request("get", url="/livez/ping"), "None"),
    ("discovery", Request("get", url="/apis/apps/v1"), "None"),
    (
        "kube-proxy-watch",
        Request("watch", user="system:kube-proxy", group="discovery.k8s.io", resource="endpointslices"),
        "None",
    ),
    ("lease-renewal", Request("get", group="coordination.k8s.io", resource="leases"), "None"),
    ("metrics-endpoint", Request("get", url="/metrics"), "Metadata"),
]
#: Resources whose content must never reach the log: at most Metadata, whatever the verb.
NEVER_ABOVE_METADATA = [
    ("", "secrets"),
    ("", "configmaps"),
    ("", "serviceaccounts/token"),
    ("authentication.k8s.io", "tokenreviews"),
]


def audit_policy_problem(policy: Mapping[str, Any]) -> str | None:
    """CIS 3.2.2: secrets are logged (never their content), permission changes in full, stages not twice."""
    if "RequestReceived" not in policy.get("omitStages", []):
        return "RequestReceived is not omitted: every request is logged twice"
    if any(rule.get("level") not in LEVELS for rule in policy.get("rules", [])):
        return "a rule has an unknown level"
    last = policy["rules"][-1] if policy.get("rules") else {}
    if set(last) != {"level"} or last["level"] == "None":
        return "the policy has no catch-all rule logging what the other rules do not match"
    for name, request, expected in AUDIT_EXPECTATIONS:
        level = audit_level(policy, request)
        if level != expected:
            return f"{name} is logged at {level}, expected {expected}"
    for group, resource in NEVER_ABOVE_METADATA:
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
            for namespace in ("auxip", "kube-system"):
                level = audit_level(policy, Request(verb, group=group, resource=resource, namespace=namespace))
                if level != "Metadata":
                    return f"{verb} {resource} in {namespace} is logged at {level}, expected Metadata"
    return None


def pod_security_problem(cp: ControlPlane) -> str | None:
    plugins = {plugin["name"]: plugin for plugin in cp.admission.get("plugins", [])}
    if "PodSecurity" not in plugins:
        return "PodSecurity has no configuration"
    configuration = plugins["PodSecurity"]["configuration"]
    for mode in ("enforce", "audit", "warn"):
        if configuration["defaults"].get(mode) != "restricted":
            return f"the cluster default {mode} level is {configuration['defaults'].get(mode)!r}, not restricted"
    exempt = configuration["exemptions"]
    if set(exempt.get("namespaces", [])) - {"kube-system"}:
        return f"namespaces exempt from Pod Security: {exempt['namespaces']}"
    if exempt.get("usernames") or exempt.get("runtimeClasses"):
        return "users or runtime classes are exempt from Pod Security"
    if "PodSecurity" not in _list(cp.apiserver.get("enable-admission-plugins")):
        return "PodSecurity is not in --enable-admission-plugins"
    return _first(
        _equals(cp.apiserver, "admission-control-config-file", cp.variables["admission_config_file"]),
        _volume_for(cp, cp.apiserver.get("admission-control-config-file", "/"), writable=False),
    )


# ---------------------------------------------------------------------------------------------------------------
# Every control holds for the defaults, on every supported version
# ---------------------------------------------------------------------------------------------------------------
SUPPORTED_VERSIONS = role_variables(ROLE)[f"{P}supported_versions"]


@pytest.mark.parametrize("control", sorted(CHECKS), ids=lambda control: f"cis-{control}")
def test_cis_control_holds_for_the_defaults(default: ControlPlane, control: str) -> None:
    assert CHECKS[control](default) is None


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_cis_control_holds_on_every_supported_version(version: str) -> None:
    control_plane = render(kubernetes_version=version)
    problems = {control: problem for control, check in CHECKS.items() if (problem := check(control_plane))}
    assert problems == {}


def test_cis_1_2_11_always_pull_images_when_switched_on() -> None:
    # Manual control, off by default (pulls on every pod start make nodes depend on the registry mirror).
    assert "AlwaysPullImages" not in render(always_pull_images=False).apiserver["enable-admission-plugins"]
    assert "AlwaysPullImages" in _list(render(always_pull_images=True).apiserver["enable-admission-plugins"])


# ---------------------------------------------------------------------------------------------------------------
# The checks can fail: each bad override breaks the controls named
# ---------------------------------------------------------------------------------------------------------------
TLS_CHECKS = {"1.2.29-apiserver-strong-ciphers", "4.2.12-kubelet-strong-ciphers"}
#: Everywhere, instead of loopback (written out so that it reads as what the override does).
ANY_ADDRESS = ".".join(["0"] * 4)
WEAK_CIPHERS = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"]
BROKEN_RENDERS: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "profiling-on",
        {"profiling": True},
        {
            "1.2.15-apiserver-profiling-false",
            "1.3.2-controller-manager-profiling-false",
            "1.4.1-scheduler-profiling-false",
        },
    ),
    (
        "weak-cipher",
        {"tls_cipher_suites": WEAK_CIPHERS},
        {"1.2.29-apiserver-strong-ciphers", "4.2.12-kubelet-strong-ciphers"},
    ),
    (
        "cbc-cipher-cis-allows",
        {"tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]},
        TLS_CHECKS,
    ),
    (
        "tls-1.1",
        {"tls_min_version": "VersionTLS11"},
        {"1.2.29-apiserver-strong-ciphers", "4.2.12-kubelet-strong-ciphers"},
    ),
    ("anonymous-on", {"anonymous_auth": True}, {"1.2.1-anonymous-auth-false"}),
    (
        "always-allow",
        {"authorization_mode": ["AlwaysAllow"]},
        {
            "1.2.6-authorization-mode-not-always-allow",
            "1.2.7-authorization-mode-node",
            "1.2.8-authorization-mode-rbac",
        },
    ),
    (
        "no-node-restriction",
        {"admission_plugins_base": ["NamespaceLifecycle", "ServiceAccount", "PodSecurity"]},
        {"1.2.3-deny-service-external-ips", "1.2.14-node-restriction"},
    ),
    ("no-event-rate-limit", {"event_rate_limit_enabled": False}, {"1.2.9-event-rate-limit"}),
    (
        "short-audit-retention",
        {"audit_log_maxage": 7, "audit_log_maxbackup": 2, "audit_log_maxsize": 10},
        {"1.2.17-audit-log-maxage", "1.2.18-audit-log-maxbackup", "1.2.19-audit-log-maxsize"},
    ),
    ("audit-log-outside-the-volume", {"audit_log_path": "/var/log/audit.log"}, {"1.2.16-audit-log-path"}),
    (
        "config-outside-the-volume",
        {"audit_policy_file": "/etc/audit-policy.yaml", "encryption_config_file": "/etc/encryption.yaml"},
        {"3.2.1-audit-policy", "1.2.27-encryption-provider-config"},
    ),
    (
        "site-override-of-a-flag",
        {"apiserver_extra_args_overrides": {"service-account-lookup": "false", "token-auth-file": "/etc/tokens.csv"}},
        {"1.2.2-no-token-auth-file", "1.2.21-service-account-lookup"},
    ),
    ("aesgcm", {"encryption_provider": "aesgcm"}, {"1.2.28-encryption-providers"}),
    ("identity-first", {"encryption_provider": "identity"}, {"1.2.28-encryption-providers"}),
    (
        "components-on-every-address",
        {
            "controller_manager_extra_args_overrides": {"bind-address": ANY_ADDRESS},
            "scheduler_extra_args_overrides": {"bind-address": ANY_ADDRESS},
        },
        {"1.3.7-controller-manager-bind-address", "1.4.2-scheduler-bind-address"},
    ),
    (
        "no-sa-credentials",
        {"controller_manager_extra_args_overrides": {"use-service-account-credentials": "false"}},
        {"1.3.3-use-service-account-credentials"},
    ),
    (
        "etcd-auto-tls",
        {"etcd_extra_args_overrides": {"auto-tls": "true", "peer-auto-tls": "true", "client-cert-auth": "false"}},
        {"2.2-etcd-client-cert-auth", "2.3-etcd-no-auto-tls", "2.6-etcd-no-peer-auto-tls"},
    ),
    (
        "etcd-trusts-the-cluster-ca",
        {"etcd_extra_args_overrides": {"trusted-ca-file": "/etc/kubernetes/pki/ca.crt"}},
        {"2.7-etcd-unique-ca"},
    ),
    ("secrets-not-audited", {"audit_secret_resources": []}, {"3.2.2-audit-policy-covers-key-concerns"}),
    (
        "kubelet-open",
        {
            "kubelet_configuration_overrides": {
                "authentication": {"anonymous": {"enabled": True}},
                "authorization": {"mode": "AlwaysAllow"},
                "readOnlyPort": 10255,
                "serverTLSBootstrap": False,
            }
        },
        {
            "1.2.5-kubelet-certificate-authority",
            "4.2.1-kubelet-anonymous-auth-false",
            "4.2.2-kubelet-authorization-webhook",
            "4.2.4-kubelet-read-only-port-0",
        },
    ),
    (
        "kube-proxy-metrics-public",
        {"kube_proxy_configuration_overrides": {"metricsBindAddress": f"{ANY_ADDRESS}:10249"}},
        {"4.3.1-kube-proxy-metrics-localhost"},
    ),
    (
        "pod-security-baseline",
        {"pod_security_defaults": {"enforce": "baseline", "audit": "restricted", "warn": "restricted"}},
        {"5.2-pod-security-defaults"},
    ),
    (
        "pod-security-exempt-namespace",
        {"pod_security_exempt_namespaces": ["kube-system", "auxip"]},
        {"5.2-pod-security-defaults"},
    ),
]


@pytest.mark.parametrize(
    ("overrides", "broken"), [(o, b) for _, o, b in BROKEN_RENDERS], ids=[n for n, _, _ in BROKEN_RENDERS]
)
def test_bad_override_is_caught_by_exactly_its_checks(overrides: dict[str, Any], broken: set[str]) -> None:
    control_plane = render(**overrides)
    failing = {control for control, check in CHECKS.items() if check(control_plane) is not None}
    assert failing == broken


# ---------------------------------------------------------------------------------------------------------------
# Structure of the rendered files (what can be validated offline; `kubeadm config validate` runs on real hosts)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_kubeadm_config_documents_match_the_version(version: str) -> None:
    docs = documents("kubeadm-config.yaml.j2", base_overrides(kubernetes_version=version))
    kubeadm_api = (
        "kubeadm.k8s.io/v1beta4" if tuple(map(int, version.split("."))) >= (1, 31) else "kubeadm.k8s.io/v1beta3"
    )
    assert [(doc["apiVersion"], doc["kind"]) for doc in docs] == [
        (kubeadm_api, "InitConfiguration"),
        (kubeadm_api, "ClusterConfiguration"),
        ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
        ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
    ]
    init, cluster = docs[0], docs[1]
    for doc in (init, cluster):
        assert set(doc) <= KUBEADM_TOP_LEVEL_KEYS[doc["kind"]], f"unknown {doc['kind']} fields"
    assert ("timeouts" in init) == (kubeadm_api == "kubeadm.k8s.io/v1beta4")
    assert cluster["kubernetesVersion"] == f"v{version}.0"
    for component in ("apiServer", "controllerManager", "scheduler"):
        flags(cluster[component], kubeadm_api)
    flags(cluster["etcd"]["local"], kubeadm_api)


def test_kubeadm_config_node_registration_and_network(default: ControlPlane) -> None:
    registration = default.init["nodeRegistration"]
    assert registration["name"] == "cp1"
    assert registration["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert registration["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    # Empty advertise address: kubeadm takes the address of the default route.
    assert "localAPIEndpoint" not in default.init
    assert "controlPlaneEndpoint" not in default.cluster
    assert default.cluster["networking"] == {
        "podSubnet": "192.168.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    assert default.cluster["etcd"]["local"]["dataDir"] == "/var/lib/etcd"
    assert default.cluster["imageRepository"] == "registry.k8s.io"


def test_kubeadm_config_takes_the_endpoint_mirror_and_sans() -> None:
    control_plane = render(
        endpoint="k8s-api.auxip.test:6443",
        advertise_address="10.20.0.11",
        cert_sans=["k8s-api.auxip.test", "10.30.0.5"],
        image_repository="harbor.auxip.test/registry.k8s.io",
    )
    assert control_plane.cluster["controlPlaneEndpoint"] == "k8s-api.auxip.test:6443"
    assert control_plane.init["localAPIEndpoint"] == {"advertiseAddress": "10.20.0.11", "bindPort": 6443}
    assert control_plane.cluster["apiServer"]["certSANs"] == ["k8s-api.auxip.test", "10.30.0.5"]
    assert control_plane.cluster["imageRepository"] == "harbor.auxip.test/registry.k8s.io"


def test_apiserver_volumes_mount_the_configuration_read_only_and_the_log_writable(default: ControlPlane) -> None:
    volumes = {volume["name"]: volume for volume in default.cluster["apiServer"]["extraVolumes"]}
    assert volumes["apiserver-config"]["hostPath"] == "/etc/kubernetes/apiserver"
    assert volumes["apiserver-config"]["readOnly"] is True
    assert volumes["audit-log"]["hostPath"] == "/var/log/kubernetes/audit"
    assert volumes["audit-log"]["readOnly"] is False
    assert all(volume["pathType"] == "DirectoryOrCreate" for volume in volumes.values())


@pytest.mark.parametrize("template", sorted(EXPECTED_KINDS))
def test_apiserver_config_files_have_their_api_version_and_kind(template: str) -> None:
    docs = documents(template, base_overrides())
    assert [(doc["apiVersion"], doc["kind"]) for doc in docs] == EXPECTED_KINDS[template]


def test_probe_patch_turns_the_apiserver_probes_into_tcp_probes(default: ControlPlane) -> None:
    assert default.probe_patch is not None
    (container,) = default.probe_patch["spec"]["containers"]
    assert container["name"] == "kube-apiserver"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe] == {"httpGet": None, "tcpSocket": {"port": 6443}}
    assert default.init["patches"] == {"directory": "/etc/kubernetes/kubeadm-patches"}


def test_no_probe_patch_when_anonymous_health_checks_are_allowed() -> None:
    control_plane = render(anonymous_auth=True)
    assert "patches" not in control_plane.init


# ---------------------------------------------------------------------------------------------------------------
# Audit policy
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_", "expected"), [(r, e) for _, r, e in AUDIT_EXPECTATIONS], ids=[n for n, _, _ in AUDIT_EXPECTATIONS]
)
def test_audit_policy_level(default: ControlPlane, request_: Request, expected: str) -> None:
    assert audit_level(default.audit_policy, request_) == expected


def test_audit_policy_has_no_secret_content_anywhere(default: ControlPlane) -> None:
    # Request and RequestResponse rules must not name the resources whose content is secret.
    for rule in default.audit_policy["rules"]:
        if rule["level"] in ("Request", "RequestResponse"):
            for entry in rule.get("resources", []):
                names = {(entry.get("group", ""), resource) for resource in entry.get("resources", [])}
                assert not names & set(NEVER_ABOVE_METADATA), rule


def test_audit_policy_check_fails_on_a_policy_that_logs_secrets_in_full(default: ControlPlane) -> None:
    leaking = dict(default.audit_policy)
    full_secrets = {"level": "RequestResponse", "resources": [{"group": "", "resources": ["secrets"]}]}
    leaking["rules"] = [full_secrets, *default.audit_policy["rules"]]
    assert audit_policy_problem(leaking) == "secret-read-in-kube-system is logged at RequestResponse, expected Metadata"
    twice = {**default.audit_policy, "omitStages": []}
    assert audit_policy_problem(twice) == "RequestReceived is not omitted: every request is logged twice"
    no_catch_all = {**default.audit_policy, "rules": default.audit_policy["rules"][:-1]}
    assert audit_policy_problem(no_catch_all) is not None


# ---------------------------------------------------------------------------------------------------------------
# Encryption at rest and the key from Vault
# ---------------------------------------------------------------------------------------------------------------
def test_encryption_config_shape() -> None:
    key = generated_key()
    control_plane = render(encryption_key=key)
    (entry,) = control_plane.encryption["resources"]
    assert entry["resources"] == ["secrets"]
    assert entry["providers"] == [{"secretbox": {"keys": [{"name": "key-1", "secret": key}]}}]
    assert len(base64.b64decode(key, validate=True)) == 32


def test_encryption_config_rotation_keeps_previous_keys_for_reading_only() -> None:
    key, previous = generated_key(), generated_key()
    control_plane = render(
        encryption_key=key,
        encryption_key_name="key-2",
        encryption_previous_keys=[{"name": "key-1", "secret": previous}],
        encryption_provider="aescbc",
    )
    (entry,) = control_plane.encryption["resources"]
    assert entry["providers"] == [
        {"aescbc": {"keys": [{"name": "key-2", "secret": key}, {"name": "key-1", "secret": previous}]}}
    ]
    assert CHECKS["1.2.28-encryption-providers"](control_plane) is None


def test_identity_fallback_comes_last_and_still_passes_1_2_28() -> None:
    control_plane = render(encryption_identity_fallback=True)
    assert _encryption_providers(control_plane) == ["secretbox", "identity"]
    assert CHECKS["1.2.28-encryption-providers"](control_plane) is None


def key_valid(key: object, previous: list[dict[str, object]] | None = None) -> bool:
    """The role's own guard (vars/main.yml), evaluated by ansible's Templar exactly as the assert task does."""
    values = {f"{P}encryption_key": key, f"{P}encryption_previous_keys": previous or []}
    result = render_role_value(
        ROLE, "{{ " + P + "encryption_key_valid | bool and " + P + "encryption_previous_keys_valid | bool }}", values
    )
    assert isinstance(result, bool)
    return result


def test_role_accepts_a_generated_key() -> None:
    assert key_valid(generated_key())
    assert key_valid(generated_key(), [{"name": "key-0", "secret": generated_key()}])


@pytest.mark.parametrize(
    "key",
    [
        "",
        base64.b64encode(b"too short").decode(),
        base64.b64encode(os.urandom(31)).decode(),
        base64.b64encode(os.urandom(33)).decode(),
        base64.b64encode(os.urandom(24)).decode(),
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),
        base64.b64encode(os.urandom(32)).decode().rstrip("="),
        base64.b64encode(os.urandom(32)).decode() + "\n",
        os.urandom(16).hex() * 2,
    ],
    ids=["empty", "9-bytes", "31-bytes", "33-bytes", "24-bytes", "urlsafe-alphabet", "no-padding", "newline", "hex"],
)
def test_role_refuses_a_key_that_is_not_32_bytes_of_base64(key: str) -> None:
    assert not key_valid(key)


def test_role_refuses_a_bad_previous_key() -> None:
    assert not key_valid(generated_key(), [{"name": "key-0", "secret": "c2hvcnQ="}])


@pytest.mark.parametrize(
    ("key", "problem"),
    [("", "It is empty"), (base64.b64encode(b"too short").decode(), "It is not 32 bytes of base64")],
    ids=["empty", "too-short"],
)
def test_preflight_message_names_the_variable_and_the_problem(key: str, problem: str) -> None:
    tasks = yaml.safe_load((ROLES_DIR / ROLE / "tasks" / "preflight.yml").read_text())
    (guard,) = [task for task in tasks if "encryption key is set" in task["name"]]
    values = {f"{P}encryption_key": key}
    assert not render_role_value(
        ROLE, "{{ " + " and ".join(f"({c})" for c in guard["ansible.builtin.assert"]["that"]) + " }}", values
    )
    message = render_role_value(ROLE, guard["ansible.builtin.assert"]["fail_msg"], values)
    assert message.startswith(f"{P}encryption_key must hold the Secrets encryption key from Vault")
    assert problem in message
    assert "community.hashi_vault" in message


# ---------------------------------------------------------------------------------------------------------------
# Admission
# ---------------------------------------------------------------------------------------------------------------
def test_admission_config_shape(default: ControlPlane) -> None:
    plugins = {plugin["name"]: plugin["configuration"] for plugin in default.admission["plugins"]}
    assert set(plugins) == {"PodSecurity", "EventRateLimit"}
    pod_security = plugins["PodSecurity"]
    assert (pod_security["apiVersion"], pod_security["kind"]) == (
        "pod-security.admission.config.k8s.io/v1",
        "PodSecurityConfiguration",
    )
    assert pod_security["defaults"] == {
        "enforce": "restricted",
        "enforce-version": "latest",
        "audit": "restricted",
        "audit-version": "latest",
        "warn": "restricted",
        "warn-version": "latest",
    }
    assert pod_security["exemptions"] == {"usernames": [], "runtimeClasses": [], "namespaces": ["kube-system"]}
    rate_limit = plugins["EventRateLimit"]
    assert (rate_limit["apiVersion"], rate_limit["kind"]) == (
        "eventratelimit.admission.k8s.io/v1alpha1",
        "Configuration",
    )
    assert {limit["type"] for limit in rate_limit["limits"]} == {"Server", "Namespace", "User"}
    assert all(limit["qps"] > 0 and limit["burst"] >= limit["qps"] for limit in rate_limit["limits"])


def test_admission_plugins_flag_matches_the_configured_plugins(default: ControlPlane) -> None:
    assert _list(default.apiserver["enable-admission-plugins"]) == default.variables["admission_plugins"]
    assert _list(default.apiserver["enable-admission-plugins"]) == [
        "NamespaceLifecycle",
        "ServiceAccount",
        "NodeRestriction",
        "PodSecurity",
        "DenyServiceExternalIPs",
        "EventRateLimit",
    ]

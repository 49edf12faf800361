"""The kubelet configuration and JoinConfiguration the node roles write, checked against the CIS Kubernetes Benchmark.

The files are rendered offline from the roles' own templates and defaults (auxip_testing.role_templates, ansible's
Templar, no playbook), so these checks run in milliseconds and cover what molecule cannot: the values a real VM
would run with. One test per CIS control of section 4 (Worker Node), ids of benchmark v1.10 (v1.11 for 4.2.14 and
4.2.15; protectKernelDefaults is v1.8's 4.2.6, dropped later). Bad overrides must be caught twice: by the checks
here, and by the role's own guard (the KN-05 assert), evaluated with the same Templar.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.cis_kubernetes import KUBELET_STRONG_CIPHERS
from auxip_testing.role_templates import ROLES_DIR, render_role_template, render_role_value

NODE = "kubernetes_node"
JOIN = "kubernetes_join"
#: Made-up join secrets of the right shape (production takes them from Vault).
JOIN_SECRETS: dict[str, Any] = {
    "kubernetes_join_api_server_endpoint": "k8s-api.auxip.test:6443",
    "kubernetes_join_token": "abcdef.0123456789abcdef",
    "kubernetes_join_ca_cert_hashes": ["sha256:" + "ab" * 32],
}


def kubelet_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    config = yaml.safe_load(render_role_template(NODE, "kubelet-config.yaml.j2", overrides))
    assert isinstance(config, dict)
    return config


def kubelet_overrides(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Role variables that merge `fields` over the rendered KubeletConfiguration, as an inventory would."""
    return {"kubernetes_node_kubelet_config_overrides": dict(fields)}


def _is_zero_duration(value: Any) -> bool:
    return re.fullmatch(r"[0hms.]*", str(value)) is not None


#: CIS control -> a check of one KubeletConfiguration that returns what is wrong, or None.
KUBELET_CHECKS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "4.2.1": lambda c: (
        None
        if c["authentication"]["anonymous"]["enabled"] is False
        else "authentication.anonymous.enabled must be false"
    ),
    "4.2.2": lambda c: (
        None
        if c["authorization"]["mode"] == "Webhook" and c["authentication"]["webhook"]["enabled"] is True
        else "authorization.mode must be Webhook, with webhook authentication"
    ),
    "4.2.3": lambda c: (
        None
        if c["authentication"].get("x509", {}).get("clientCAFile")
        else "authentication.x509.clientCAFile must be set"
    ),
    "4.2.4": lambda c: None if c.get("readOnlyPort", 0) == 0 else "readOnlyPort must be 0",
    "4.2.5": lambda c: (
        None
        if not _is_zero_duration(c.get("streamingConnectionIdleTimeout", "4h"))
        else "streamingConnectionIdleTimeout must not be 0"
    ),
    "4.2.6": lambda c: None if c.get("makeIPTablesUtilChains", True) is True else "makeIPTablesUtilChains must be true",
    "1.8-4.2.6": lambda c: None if c.get("protectKernelDefaults") is True else "protectKernelDefaults must be true",
    "4.2.8": lambda c: (
        None
        if isinstance(c.get("eventRecordQPS"), int) and c["eventRecordQPS"] > 0
        else "eventRecordQPS must be a positive limit"
    ),
    "4.2.9": lambda c: (
        None
        if c.get("serverTLSBootstrap") is True or (c.get("tlsCertFile") and c.get("tlsPrivateKeyFile"))
        else "a serving certificate is needed: serverTLSBootstrap, or tlsCertFile and tlsPrivateKeyFile"
    ),
    "4.2.10": lambda c: None if c.get("rotateCertificates", True) is True else "rotateCertificates must not be false",
    "4.2.11": lambda c: (
        None
        if c.get("featureGates", {}).get("RotateKubeletServerCertificate", True) is not False
        and c.get("serverTLSBootstrap") is True
        else "serving certificates must be requested and rotated (serverTLSBootstrap, RotateKubeletServerCertificate)"
    ),
    "4.2.12": lambda c: (
        None
        if c.get("tlsCipherSuites")
        and set(c["tlsCipherSuites"]) <= KUBELET_STRONG_CIPHERS
        and c.get("tlsMinVersion") in ("VersionTLS12", "VersionTLS13")
        else "tlsCipherSuites must be a subset of the strong ciphers, tlsMinVersion at least VersionTLS12"
    ),
    "4.2.13": lambda c: (
        None if isinstance(c.get("podPidsLimit"), int) and c["podPidsLimit"] > 0 else "podPidsLimit must be set"
    ),
    "4.2.14": lambda c: None if c.get("seccompDefault") is True else "seccompDefault must be true",
}


def cis_findings(config: dict[str, Any]) -> dict[str, str]:
    """Every CIS control the configuration breaks, with what is wrong."""
    return {control: problem for control, check in KUBELET_CHECKS.items() if (problem := check(config)) is not None}


def role_guard_failures(overrides: Mapping[str, Any] | None = None) -> list[str]:
    """The conditions of the role's KN-05 guard (the assert before the file is written) that fail with `overrides`."""
    tasks = yaml.safe_load((ROLES_DIR / NODE / "tasks" / "kubelet_config.yml").read_text())
    guard = next(task for task in tasks if "CIS 4.2" in task["name"])
    conditions: list[str] = guard["ansible.builtin.assert"]["that"]
    # One evaluation for all conditions: a list of booleans, in order.
    results = render_role_value(NODE, "{{ [" + ", ".join(f"(({c}) | bool)" for c in conditions) + "] }}", overrides)
    return [condition for condition, result in zip(conditions, results, strict=True) if result is not True]


@pytest.fixture(scope="module")
def default_config() -> dict[str, Any]:
    return kubelet_config()


def test_defaults_break_no_control(default_config: dict[str, Any]) -> None:
    assert cis_findings(default_config) == {}
    assert role_guard_failures() == []
    assert default_config["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    assert default_config["kind"] == "KubeletConfiguration"


def test_cis_4_1_1_and_4_1_2_kubelet_service_files_600_root() -> None:
    tasks = yaml.safe_load((ROLES_DIR / NODE / "tasks" / "kubelet_service.yml").read_text())
    modes = {
        task["name"]: (module["owner"], module["group"], module["mode"])
        for task in tasks
        for name, module in task.items()
        if name in ("ansible.builtin.template", "ansible.builtin.file") and "mode" in module and "state" not in module
    }
    assert modes == {
        "KN-06 | Write the kubelet drop-in": ("root", "root", "0600"),
        "KN-06 | CIS 4.1.1 / 4.1.2 | The kubelet service files are 600 and owned by root": ("root", "root", "0600"),
    }


def test_cis_4_1_5_to_4_1_8_kubeconfig_and_ca_600_root() -> None:
    protected = render_role_value(JOIN, "{{ kubernetes_join_protected_files }}")
    assert protected == ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt"]
    tasks = yaml.safe_load((ROLES_DIR / JOIN / "tasks" / "files.yml").read_text())
    chmod = next(task["ansible.builtin.file"] for task in tasks if "ansible.builtin.file" in task)
    assert (chmod["owner"], chmod["group"], chmod["mode"]) == ("root", "root", "0600")


def test_cis_4_1_9_and_4_1_10_kubelet_config_600_root() -> None:
    tasks = yaml.safe_load((ROLES_DIR / NODE / "tasks" / "kubelet_config.yml").read_text())
    write = next(task["ansible.builtin.template"] for task in tasks if "ansible.builtin.template" in task)
    assert (write["owner"], write["group"]) == ("root", "root")
    assert render_role_value(NODE, write["mode"]) == "0600"


def test_cis_4_2_1_anonymous_auth_disabled(default_config: dict[str, Any]) -> None:
    assert default_config["authentication"]["anonymous"]["enabled"] is False


def test_cis_4_2_2_authorization_webhook(default_config: dict[str, Any]) -> None:
    assert default_config["authorization"]["mode"] == "Webhook"
    assert default_config["authentication"]["webhook"]["enabled"] is True


def test_cis_4_2_3_client_ca_file(default_config: dict[str, Any]) -> None:
    # The cluster CA kubeadm join writes.
    assert default_config["authentication"]["x509"]["clientCAFile"] == "/etc/kubernetes/pki/ca.crt"


def test_cis_4_2_4_read_only_port_0(default_config: dict[str, Any]) -> None:
    assert default_config["readOnlyPort"] == 0


def test_cis_4_2_5_streaming_connection_idle_timeout_not_0(default_config: dict[str, Any]) -> None:
    assert default_config["streamingConnectionIdleTimeout"] == "5m0s"
    assert KUBELET_CHECKS["4.2.5"](default_config) is None


def test_cis_4_2_6_make_iptables_util_chains(default_config: dict[str, Any]) -> None:
    assert default_config["makeIPTablesUtilChains"] is True


def test_cis_1_8_4_2_6_protect_kernel_defaults_with_matching_sysctls(default_config: dict[str, Any]) -> None:
    assert default_config["protectKernelDefaults"] is True
    # kubelet refuses to start unless the kernel has its defaults: KN-02 writes exactly those.
    sysctl = render_role_template(NODE, "sysctl-kubernetes-node.conf.j2")
    values = dict(
        re.split(r"\s*=\s*", line, maxsplit=1) for line in sysctl.splitlines() if line and not line.startswith("#")
    )
    kubelet_expects = {
        "vm.overcommit_memory": "1",
        "vm.panic_on_oom": "0",
        "kernel.panic": "10",
        "kernel.panic_on_oops": "1",
        "kernel.keys.root_maxkeys": "1000000",
        "kernel.keys.root_maxbytes": "25000000",
    }
    assert {key: values[key] for key in kubelet_expects} == kubelet_expects
    assert values["net.ipv4.ip_forward"] == "1"
    assert values["-net.bridge.bridge-nf-call-iptables"] == "1"


def test_cis_4_2_7_no_hostname_override() -> None:
    dropin = render_role_template(NODE, "kubelet-dropin.conf.j2")
    assert "hostname-override" not in dropin
    # kubeadm passes --hostname-override when nodeRegistration.name differs from the hostname: none by default.
    join = yaml.safe_load(render_role_template(JOIN, "kubeadm-join.yaml.j2", JOIN_SECRETS))
    assert "name" not in join["nodeRegistration"]
    assert not [arg for arg in join["nodeRegistration"]["kubeletExtraArgs"] if arg["name"] == "hostname-override"]


def test_cis_4_2_8_event_record_qps(default_config: dict[str, Any]) -> None:
    assert default_config["eventRecordQPS"] == 50
    assert default_config["eventBurst"] >= default_config["eventRecordQPS"]


def test_cis_4_2_9_serving_certificate_from_the_cluster_ca(default_config: dict[str, Any]) -> None:
    # No static tlsCertFile: the serving certificate is bootstrapped (a CSR signed by the cluster CA).
    assert default_config["serverTLSBootstrap"] is True
    assert "tlsCertFile" not in default_config
    assert "tlsPrivateKeyFile" not in default_config


def test_cis_4_2_10_rotate_certificates(default_config: dict[str, Any]) -> None:
    assert default_config["rotateCertificates"] is True


def test_cis_4_2_11_rotate_kubelet_server_certificate(default_config: dict[str, Any]) -> None:
    # The feature gate is on by default; it must not be switched off.
    assert default_config.get("featureGates", {}).get("RotateKubeletServerCertificate", True) is True
    assert default_config["serverTLSBootstrap"] is True


def test_cis_4_2_12_strong_ciphers_only(default_config: dict[str, Any]) -> None:
    suites = default_config["tlsCipherSuites"]
    assert suites
    assert set(suites) <= KUBELET_STRONG_CIPHERS
    # Stricter than the benchmark: forward secrecy only (no static-RSA key exchange).
    assert all(suite.startswith("TLS_ECDHE_") for suite in suites)
    assert default_config["tlsMinVersion"] == "VersionTLS12"


def test_cis_4_2_13_pod_pids_limit(default_config: dict[str, Any]) -> None:
    assert default_config["podPidsLimit"] == 4096


def test_cis_4_2_14_seccomp_default(default_config: dict[str, Any]) -> None:
    assert default_config["seccompDefault"] is True


def test_cis_4_2_15_ip_address_deny_when_an_allow_list_is_given() -> None:
    assert "IPAddressDeny" not in render_role_template(NODE, "kubelet-dropin.conf.j2")
    allowed = ["localhost", "link-local", "10.10.0.0/24", "10.244.0.0/16"]
    dropin = render_role_template(NODE, "kubelet-dropin.conf.j2", {"kubernetes_node_kubelet_ip_address_allow": allowed})
    assert "IPAddressDeny=any" in dropin.splitlines()
    assert f"IPAddressAllow={' '.join(allowed)}" in dropin.splitlines()


def test_kubelet_reads_the_role_config_after_kubeadm_dropin() -> None:
    dropin = render_role_template(NODE, "kubelet-dropin.conf.j2")
    assert 'Environment="KUBELET_CONFIG_ARGS=--config=/etc/kubernetes/kubelet-config.yaml"' in dropin.splitlines()
    # Sorts after kubeadm's 10-kubeadm.conf, whose assignment it replaces.
    assert Path(render_role_value(NODE, "{{ kubernetes_node_kubelet_dropin }}")).name > "10-kubeadm.conf"


def test_kubelet_and_containerd_agree_on_cgroups_and_socket(default_config: dict[str, Any]) -> None:
    containerd = render_role_template("containerd", "config.toml.j2")
    assert re.search(r"^\s*SystemdCgroup = true$", containerd, re.M)
    assert default_config["cgroupDriver"] == "systemd"
    socket = render_role_value("containerd", "{{ containerd_socket }}")
    assert default_config["containerRuntimeEndpoint"] == f"unix://{socket}"
    assert render_role_value(JOIN, "{{ kubernetes_join_cri_socket }}") == f"unix://{socket}"
    assert default_config["failSwapOn"] is True


@pytest.mark.parametrize(
    ("control", "fields"),
    [
        ("4.2.1", {"authentication": {"anonymous": {"enabled": True}}}),
        ("4.2.2", {"authorization": {"mode": "AlwaysAllow"}}),
        ("4.2.3", {"authentication": {"x509": {"clientCAFile": ""}}}),
        ("4.2.4", {"readOnlyPort": 10255}),
        ("4.2.5", {"streamingConnectionIdleTimeout": "0s"}),
        ("4.2.6", {"makeIPTablesUtilChains": False}),
        ("1.8-4.2.6", {"protectKernelDefaults": False}),
        ("4.2.8", {"eventRecordQPS": 0}),
        ("4.2.10", {"rotateCertificates": False}),
        ("4.2.12", {"tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]}),
        ("4.2.12", {"tlsMinVersion": "VersionTLS10"}),
        ("4.2.13", {"podPidsLimit": 0}),
        ("4.2.14", {"seccompDefault": False}),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value)),
)
def test_bad_override_is_caught(control: str, fields: dict[str, Any]) -> None:
    overrides = kubelet_overrides(fields)
    rendered = kubelet_config(overrides)
    # The override really reaches the file (merged over the hardened values, the rest kept) ...
    assert control in cis_findings(rendered)
    assert set(cis_findings(rendered)) <= {control, "4.2.11"}
    # ... and the role refuses it before writing the file.
    assert role_guard_failures(overrides), f"the KN-05 guard lets {fields} through"


def test_bad_read_only_port_names_the_condition() -> None:
    failures = role_guard_failures(kubelet_overrides({"readOnlyPort": 10255}))
    assert failures == ["kubernetes_node_kubelet_config.readOnlyPort | int == 0"]


def test_harmless_override_passes() -> None:
    overrides = kubelet_overrides({"maxPods": 60, "evictionHard": {"memory.available": "500Mi"}})
    rendered = kubelet_config(overrides)
    assert rendered["maxPods"] == 60
    # Recursive merge: the other eviction thresholds stay.
    assert rendered["evictionHard"]["memory.available"] == "500Mi"
    assert rendered["evictionHard"]["nodefs.available"] == "10%"
    assert cis_findings(rendered) == {}
    assert role_guard_failures(overrides) == []


def test_join_configuration_from_secrets() -> None:
    join = yaml.safe_load(render_role_template(JOIN, "kubeadm-join.yaml.j2", JOIN_SECRETS))
    assert join["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert join["kind"] == "JoinConfiguration"
    token = join["discovery"]["bootstrapToken"]
    assert token["apiServerEndpoint"] == "k8s-api.auxip.test:6443"
    assert token["token"] == join["discovery"]["tlsBootstrapToken"] == JOIN_SECRETS["kubernetes_join_token"]
    assert token["caCertHashes"] == JOIN_SECRETS["kubernetes_join_ca_cert_hashes"]
    # The API server's CA is pinned, never trusted on first use.
    assert token["unsafeSkipCAVerification"] is False
    assert join["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert join["nodeRegistration"]["taints"] == []
    assert join["nodeRegistration"]["ignorePreflightErrors"] == []
    assert join["caCertPath"] == "/etc/kubernetes/pki/ca.crt"


def test_join_configuration_kubelet_args_in_v1beta4_form() -> None:
    overrides = {
        **JOIN_SECRETS,
        "kubernetes_join_node_ip": "10.10.0.21",
        "kubernetes_join_node_labels": {"auxip.esa.int/pool": "workers", "auxip.esa.int/zone": "a"},
    }
    join = yaml.safe_load(render_role_template(JOIN, "kubeadm-join.yaml.j2", overrides))
    assert join["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.10.0.21"},
        {"name": "node-labels", "value": "auxip.esa.int/pool=workers,auxip.esa.int/zone=a"},
    ]


def test_join_secrets_have_no_defaults() -> None:
    # Secrets come from Vault per cluster: the role ships none, and refuses to run without them (KJ-01).
    for name in ("kubernetes_join_api_server_endpoint", "kubernetes_join_token"):
        assert render_role_value(JOIN, f"{{{{ {name} }}}}") == "", name
    assert render_role_value(JOIN, "{{ kubernetes_join_ca_cert_hashes }}") == []
    tasks = yaml.safe_load((ROLES_DIR / JOIN / "tasks" / "secrets.yml").read_text())
    messages = {task["name"]: task["ansible.builtin.assert"]["fail_msg"] for task in tasks}
    for name in (*JOIN_SECRETS, "kubernetes_join_ca_cert_hashes"):
        assert any(name in task and message.startswith(name) for task, message in messages.items()), name


def test_join_configuration_mode_600() -> None:
    tasks = yaml.safe_load((ROLES_DIR / JOIN / "tasks" / "config.yml").read_text())
    write = next(task for task in tasks if "ansible.builtin.template" in task)
    assert write["ansible.builtin.template"]["mode"] == "0600"
    # The file holds the token: its diff is never printed.
    assert write["no_log"] is True

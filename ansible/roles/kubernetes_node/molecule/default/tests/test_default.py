"""Checks of the kubernetes_node role on the molecule instance, through `podman exec` (testinfra's podman backend).

No Kubernetes repository is reachable, so kubelet, kubeadm and kubectl are not installed: the repository definition
is checked with apt's own parser, the kubelet configuration file against the CIS 4.2 expectations, and the drop-in
with systemd's merged view of the kubelet unit (prepare.yml installs stand-ins for the packages' unit files).
Swap and sysctl are verified by their files; applying them needs a VM.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.molecule_checks import needs_vm, podman_hosts, root_file, vm_only  # noqa: F401 (vm_only: a fixture, found by name)

ROLE_DIR = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text())
SCENARIO = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())
GROUP_VARS = SCENARIO["provisioner"]["inventory"]["group_vars"]["all"]
KUBELET_CONFIG = DEFAULTS["kubernetes_node_kubelet_config_file"]
DROPIN = DEFAULTS["kubernetes_node_kubelet_dropin"]
MINOR = ".".join(DEFAULTS["kubernetes_node_version"].split(".")[:2])
REPOSITORY_URL = f"https://pkgs.k8s.io/core:/stable:/v{MINOR}/deb/"


testinfra_hosts = podman_hosts()


@pytest.fixture(scope="module")
def kubelet_config(host: Any) -> dict[str, Any]:
    return yaml.safe_load(host.file(KUBELET_CONFIG).content_string)


def test_kn01_swap_entries_commented_out(host: Any) -> None:
    fstab = host.file("/etc/fstab").content_string.splitlines()
    assert "# KN-01 swap off for kubelet: /swapfile none swap sw 0 0" in fstab
    active = [line for line in fstab if line.strip() and not line.lstrip().startswith("#")]
    assert not [line for line in active if line.split()[2:3] == ["swap"]]


def test_kn01_swap_target_masked(host: Any) -> None:
    assert host.check_output("systemctl is-enabled swap.target || true") == "masked"


@needs_vm
def test_kn01_no_active_swap(host: Any) -> None:
    assert host.check_output("swapon --show --noheadings") == ""


def _sysctl_file(host: Any) -> dict[str, str]:
    lines = host.file(DEFAULTS["kubernetes_node_sysctl_file"]).content_string.splitlines()
    return dict(re.split(r"\s*=\s*", line, maxsplit=1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("-net.bridge.bridge-nf-call-iptables", "1"),
        ("-net.bridge.bridge-nf-call-ip6tables", "1"),
        # What kubelet's protectKernelDefaults requires.
        ("vm.overcommit_memory", "1"),
        ("vm.panic_on_oom", "0"),
        ("kernel.panic", "10"),
        ("kernel.panic_on_oops", "1"),
        ("kernel.keys.root_maxkeys", "1000000"),
        ("kernel.keys.root_maxbytes", "25000000"),
    ],
)
def test_kn02_sysctl_file(host: Any, key: str, expected: str) -> None:
    assert _sysctl_file(host)[key] == expected
    root_file(host, DEFAULTS["kubernetes_node_sysctl_file"], 0o644)


@needs_vm
def test_kn02_sysctl_applied(host: Any) -> None:
    for key, expected in _sysctl_file(host).items():
        assert host.sysctl(key.lstrip("-")) == int(expected), key


def test_kn03_keyring(host: Any) -> None:
    root_file(host, DEFAULTS["kubernetes_node_apt_keyring"], 0o644)
    assert (
        host.file(DEFAULTS["kubernetes_node_apt_keyring"]).content_string
        == GROUP_VARS["kubernetes_node_apt_key_content"]
    )
    # The key is confined to this repository: nothing added to apt's global trust store.
    assert not host.file("/etc/apt/trusted.gpg").exists


def test_kn03_repository_as_apt_reads_it(host: Any) -> None:
    root_file(host, DEFAULTS["kubernetes_node_apt_sources_file"], 0o644)
    # apt's own parser: the files `apt-get update` would fetch for each source (printed, not fetched).
    uris = [line.split()[0].strip("'") for line in host.check_output("apt-get update --print-uris").splitlines()]
    assert f"{REPOSITORY_URL}InRelease" in uris, uris
    assert f"{REPOSITORY_URL}Packages.xz" in uris, uris
    fields = dict(
        line.split(": ", 1)
        for line in host.file(DEFAULTS["kubernetes_node_apt_sources_file"]).content_string.splitlines()
        if ": " in line and not line.startswith("#")
    )
    assert fields == {
        "Types": "deb",
        "URIs": REPOSITORY_URL,
        "Suites": "/",
        "Signed-By": DEFAULTS["kubernetes_node_apt_keyring"],
    }


def test_kn04_packages_skipped_in_this_scenario(host: Any) -> None:
    # kubernetes_node_packages_install is false here: nothing may have been fetched from the unreachable repository.
    assert GROUP_VARS["kubernetes_node_packages_install"] is False
    for package in DEFAULTS["kubernetes_node_packages"]:
        assert not host.package(package).is_installed
    assert not host.run("ls /var/lib/apt/lists/ | grep -q pkgs.k8s.io").succeeded


def test_kn05_kubelet_config_file_cis_4_1_9_and_4_1_10(host: Any) -> None:
    root_file(host, KUBELET_CONFIG, 0o600)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("authentication.anonymous.enabled", False),  # CIS 4.2.1
        ("authentication.webhook.enabled", True),
        ("authorization.mode", "Webhook"),  # CIS 4.2.2
        ("authentication.x509.clientCAFile", "/etc/kubernetes/pki/ca.crt"),  # CIS 4.2.3
        ("readOnlyPort", 0),  # CIS 4.2.4
        ("streamingConnectionIdleTimeout", "5m0s"),  # CIS 4.2.5
        ("makeIPTablesUtilChains", True),  # CIS 4.2.6
        ("protectKernelDefaults", True),  # CIS 1.8 4.2.6
        ("eventRecordQPS", 50),  # CIS 4.2.8
        ("serverTLSBootstrap", True),  # CIS 4.2.9 / 4.2.11
        ("rotateCertificates", True),  # CIS 4.2.10
        ("tlsMinVersion", "VersionTLS12"),  # CIS 4.2.12
        ("podPidsLimit", 4096),  # CIS 4.2.13
        ("seccompDefault", True),  # CIS 4.2.14
        ("cgroupDriver", "systemd"),
        ("containerRuntimeEndpoint", "unix:///run/containerd/containerd.sock"),
        ("failSwapOn", True),
    ],
)
def test_kn05_kubelet_config_values(kubelet_config: dict[str, Any], path: str, expected: Any) -> None:
    value: Any = kubelet_config
    for part in path.split("."):
        value = value[part]
    assert value == expected
    # Exact types: kubelet rejects "0" where it wants 0.
    assert type(value) is type(expected)


def test_kn05_kubelet_config_strong_ciphers_only(kubelet_config: dict[str, Any]) -> None:
    assert kubelet_config["tlsCipherSuites"] == DEFAULTS["kubernetes_node_tls_cipher_suites"]
    assert all(suite.startswith("TLS_ECDHE_") and "CBC" not in suite for suite in kubelet_config["tlsCipherSuites"])
    assert kubelet_config["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    assert kubelet_config["kind"] == "KubeletConfiguration"


def test_kn06_dropin_cis_4_1_1_and_4_1_2(host: Any) -> None:
    root_file(host, DROPIN, 0o600)
    # The stand-ins for the packages' files came with 644; the role brings them to 600.
    root_file(host, "/usr/lib/systemd/system/kubelet.service", 0o600)
    root_file(host, "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o600)


def test_kn06_systemd_runs_kubelet_with_the_role_config(host: Any) -> None:
    # systemd's merged view: the role's drop-in sorts after 10-kubeadm.conf, so its KUBELET_CONFIG_ARGS wins.
    environment = host.check_output("systemctl show kubelet --property=Environment --value")
    assert f"KUBELET_CONFIG_ARGS=--config={KUBELET_CONFIG}" in environment.split()
    assert "--config=/var/lib/kubelet/config.yaml" not in environment
    dropins = host.check_output("systemctl show kubelet --property=DropInPaths --value").split()
    assert dropins == ["/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", DROPIN]
    assert "containerd.service" in host.check_output("systemctl show kubelet --property=After --value").split()
    # CIS 4.2.7: no --hostname-override anywhere in the unit.
    assert "--hostname-override" not in host.check_output("systemctl cat kubelet")
    # No IPAddressAllow list configured: no IP filtering written.
    assert "IPAddressDeny" not in host.file(DROPIN).content_string


def test_kn06_kubelet_enabled_not_started(host: Any) -> None:
    # kubeadm join starts kubelet; before it the service is only enabled.
    service = host.service("kubelet")
    assert service.is_enabled
    assert not service.is_running

"""Checks of the kubernetes_join role on the molecule instance, through `podman exec` (testinfra's podman backend).

kubeadm is not installed (no Kubernetes repository is reachable), so the node has not joined: the JoinConfiguration
is read back and compared with the scenario's values, and the join's absence is checked. converge.yml has already
shown that the role stops, naming the variable, when the token is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.molecule_checks import podman_hosts

ROLE_DIR = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text())
SCENARIO = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())
GROUP_VARS = SCENARIO["provisioner"]["inventory"]["group_vars"]["all"]
JOIN_CONFIG = DEFAULTS["kubernetes_join_config_file"]


testinfra_hosts = podman_hosts()


@pytest.fixture(scope="module")
def join_config(host: Any) -> dict[str, Any]:
    return yaml.safe_load(host.file(JOIN_CONFIG).content_string)


def test_kj02_join_config_mode(host: Any) -> None:
    config = host.file(JOIN_CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)


def test_kj02_join_config_discovery(join_config: dict[str, Any]) -> None:
    assert join_config["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert join_config["kind"] == "JoinConfiguration"
    token = join_config["discovery"]["bootstrapToken"]
    assert token["apiServerEndpoint"] == GROUP_VARS["kubernetes_join_api_server_endpoint"]
    assert token["token"] == GROUP_VARS["kubernetes_join_token"]
    assert token["caCertHashes"] == GROUP_VARS["kubernetes_join_ca_cert_hashes"]
    # The CA is pinned: no trust on first use.
    assert token["unsafeSkipCAVerification"] is False
    assert join_config["discovery"]["tlsBootstrapToken"] == GROUP_VARS["kubernetes_join_token"]


def test_kj02_join_config_node_registration(join_config: dict[str, Any]) -> None:
    registration = join_config["nodeRegistration"]
    assert registration["criSocket"] == "unix:///run/containerd/containerd.sock"
    # No name: kubeadm registers the hostname and passes no --hostname-override (CIS 4.2.7).
    assert "name" not in registration
    assert registration["taints"] == []
    assert registration["ignorePreflightErrors"] == []
    assert registration["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": GROUP_VARS["kubernetes_join_node_ip"]},
        {"name": "node-labels", "value": "auxip.esa.int/pool=workers"},
    ]
    assert join_config["timeouts"] == {"discovery": "5m0s", "tlsBootstrap": "5m0s"}


def test_kj03_join_skipped_without_kubeadm(host: Any) -> None:
    assert not host.file(DEFAULTS["kubernetes_join_kubeadm_binary"]).exists
    assert not host.file(DEFAULTS["kubernetes_join_kubelet_kubeconfig"]).exists
    # Not joined, so the configuration stays for the next run (it is removed after a join).
    assert host.file(JOIN_CONFIG).exists


def test_node_prepared_by_the_dependency(host: Any) -> None:
    # kubernetes_node ran first (meta dependency): the hardened kubelet configuration is in place.
    kubelet = host.file("/etc/kubernetes/kubelet-config.yaml")
    assert (kubelet.user, kubelet.mode) == ("root", 0o600)
    assert yaml.safe_load(kubelet.content_string)["readOnlyPort"] == 0

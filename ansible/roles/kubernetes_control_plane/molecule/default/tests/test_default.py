"""Checks of the kubernetes_control_plane role on the molecule instance, through `podman exec` (testinfra's podman).

The instance has no kubeadm (the Kubernetes repository is unreachable and the role installs no package), so these
tests cover what the role does up to `kubeadm init`: directories and their modes, the etcd data directory, every
rendered file (mode, owner, YAML documents and kinds, the encryption key read from the run's throw-away key), that
init was skipped, and that a run without a valid key stops with a message naming the variable. The CIS content of
the files is checked offline by tests/unit/test_control_plane_config_cis.py.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.molecule_checks import podman_hosts

ROLE_DIR = Path(__file__).resolve().parents[3]
INVENTORY_FILE = Path(os.environ["MOLECULE_INVENTORY_FILE"])
INVENTORY = yaml.safe_load(INVENTORY_FILE.read_text()) or {}
testinfra_hosts = podman_hosts()

APISERVER_DIR = "/etc/kubernetes/apiserver"
FILES = {
    f"{APISERVER_DIR}/audit-policy.yaml": ["Policy"],
    f"{APISERVER_DIR}/encryption-config.yaml": ["EncryptionConfiguration"],
    f"{APISERVER_DIR}/admission-config.yaml": ["AdmissionConfiguration"],
    "/etc/kubernetes/kubeadm-config.yaml": [
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    ],
    "/etc/kubernetes/kubeadm-patches/kube-apiserver+strategic.yaml": [None],
}


#: base64 of "too short": 9 bytes instead of 32.
SHORT_KEY = "dG9vIHNob3J0"
DIRECTORIES = {
    "/etc/kubernetes": "755 root root",
    "/etc/kubernetes/manifests": "755 root root",
    "/etc/kubernetes/pki": "755 root root",
    APISERVER_DIR: "700 root root",
    "/etc/kubernetes/kubeadm-patches": "700 root root",
    "/var/log/kubernetes/audit": "700 root root",
    # CIS 1.1.11 and 1.1.12.
    "/var/lib/etcd": "700 etcd etcd",
}


@functools.cache
def _stat(container: str) -> dict[str, str]:
    """`stat` of every directory and file the role writes, in one `podman exec` (each exec costs a second or more)."""
    import testinfra

    paths = " ".join(sorted([*DIRECTORIES, *FILES]))
    output = testinfra.get_host(f"podman://{container}").check_output(f"stat -c '%n|%F|%a|%U|%G' {paths}")
    return {name: " ".join(rest) for name, *rest in (line.split("|") for line in output.splitlines())}


@functools.cache
def _documents(container: str, path: str) -> list[dict[str, Any]]:
    import testinfra

    text = testinfra.get_host(f"podman://{container}").file(path).content_string
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.mark.parametrize("path", sorted(DIRECTORIES))
def test_directory(host: Any, path: str) -> None:
    assert _stat(host.backend.name)[path] == f"directory {DIRECTORIES[path]}"


def test_etcd_user_is_a_system_account_without_login(host: Any) -> None:
    user = host.user("etcd")
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"


@pytest.mark.parametrize("path", sorted(FILES))
def test_rendered_file_is_root_only(host: Any, path: str) -> None:
    assert _stat(host.backend.name)[path] == "regular file 600 root root"


@pytest.mark.parametrize("path", sorted(FILES))
def test_rendered_file_holds_the_expected_documents(host: Any, path: str) -> None:
    assert [doc.get("kind") for doc in _documents(host.backend.name, path)] == FILES[path]


def test_encryption_config_holds_the_key_of_this_run(host: Any) -> None:
    key = host.file("/root/molecule-encryption-key").content_string.strip()
    (config,) = _documents(host.backend.name, f"{APISERVER_DIR}/encryption-config.yaml")
    (provider,) = config["resources"][0]["providers"]
    assert provider["secretbox"]["keys"] == [{"name": "key-1", "secret": key}]


def test_kubeadm_config_uses_v1beta4_for_the_default_version(host: Any) -> None:
    init, cluster, *_ = _documents(host.backend.name, "/etc/kubernetes/kubeadm-config.yaml")
    assert init["apiVersion"] == cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert cluster["kubernetesVersion"] == "v1.31.0"
    assert init["nodeRegistration"]["name"] == host.backend.name


def test_init_was_skipped_without_kubeadm(host: Any) -> None:
    script = "! test -e /usr/bin/kubeadm && ! test -e /etc/kubernetes/admin.conf && ls -A /etc/kubernetes/manifests"
    result = host.run(script)
    assert result.rc == 0
    assert result.stdout.strip() == ""


# One bad key only (each run costs several seconds); tests/unit covers the other malformed keys offline.
def test_role_stops_without_a_valid_key(tmp_path: Path) -> None:
    playbook = tmp_path / "no-key.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Apply the role without a valid key",
                    "hosts": "all",
                    "gather_facts": False,
                    "roles": [{"role": ROLE_DIR.name, "kubernetes_control_plane_encryption_key": SHORT_KEY}],
                }
            ]
        )
    )
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROLE_DIR.parent), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(INVENTORY_FILE),
            "--tags",
            "kubernetes_control_plane_preflight",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "kubernetes_control_plane_encryption_key must hold the Secrets encryption key from Vault" in output
    assert "It is not 32 bytes of base64" in output

"""Checks of the containerd role on the molecule instance, through `podman exec` (testinfra's podman backend).

containerd really runs in the container, so its configuration is checked as the daemon sees it (`containerd config
dump`, the CRI plugin's load status) and a pull is routed through the configured mirror to a listener on loopback.
Only module loading needs a VM: there the modules-load.d file is checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.molecule_checks import podman_hosts, root_file, vm_only  # noqa: F401 (vm_only: a fixture, found by name)

ROLE_DIR = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text())
SCENARIO = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())
GROUP_VARS = SCENARIO["provisioner"]["inventory"]["group_vars"]["all"]
MIRROR_PORT = 8443


testinfra_hosts = podman_hosts()


@pytest.fixture(scope="module")
def config_dump(host: Any) -> str:
    """The configuration containerd runs with: the file merged with the built-in defaults."""
    return host.check_output("containerd config dump")


def test_ctr01_packages_from_debian(host: Any) -> None:
    containerd = host.package("containerd")
    assert containerd.is_installed
    assert containerd.version.startswith("1.6.")
    assert host.package("runc").is_installed
    # Debian's build: the version string carries the Debian revision.
    assert "~ds1" in host.check_output("containerd --version")
    assert "hold" not in host.check_output("dpkg --get-selections containerd runc")


def test_ctr02_modules_load_file(host: Any) -> None:
    root_file(host, DEFAULTS["containerd_modules_load_file"], 0o644)
    lines = host.file(DEFAULTS["containerd_modules_load_file"]).content_string.splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["overlay", "br_netfilter"]


@pytest.mark.usefixtures("vm_only")
def test_ctr02_modules_loaded(host: Any) -> None:
    modules = host.check_output("lsmod").split()
    assert "overlay" in modules
    assert "br_netfilter" in modules


def test_ctr03_config_file(host: Any) -> None:
    root_file(host, DEFAULTS["containerd_config_file"], 0o600)
    assert "Ansible managed" in host.file(DEFAULTS["containerd_config_file"]).content_string


def test_ctr03_runc_uses_systemd_cgroups(config_dump: str) -> None:
    runc_options = config_dump.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]')[1]
    assert re.search(r"^\s*SystemdCgroup = true$", runc_options.split("[plugins.")[0], re.M)
    assert re.search(r'^\s*default_runtime_name = "runc"$', config_dump, re.M)


def test_ctr03_sandbox_image_through_the_registry_prefix(config_dump: str) -> None:
    expected = f"{GROUP_VARS['containerd_registry_prefix']}/pause:{DEFAULTS['containerd_pause_image_tag']}"
    assert f'sandbox_image = "{expected}"' in config_dump


def test_ctr03_registry_config_path_and_cni_dirs(config_dump: str) -> None:
    assert f'config_path = "{DEFAULTS["containerd_registry_config_path"]}"' in config_dump
    assert 'bin_dir = "/opt/cni/bin"' in config_dump
    assert 'conf_dir = "/etc/cni/net.d"' in config_dump


def test_ctr03_cri_plugin_loaded(host: Any) -> None:
    # The CRI plugin is what kubelet talks to; a configuration it rejects leaves it in "error".
    plugins = host.check_output("ctr plugins ls")
    assert re.search(r"^io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok\s*$", plugins, re.M), plugins


def test_ctr04_hosts_toml_per_registry(host: Any) -> None:
    for entry in GROUP_VARS["containerd_registry_mirrors"]:
        path = f"{DEFAULTS['containerd_registry_config_path']}/{entry['registry']}/hosts.toml"
        root_file(host, path, 0o644)
        text = host.file(path).content_string
        for mirror in entry["mirrors"]:
            assert f'[host."{mirror["url"]}"]' in text
            assert "override_path = true" in text
            assert "skip_verify = false" in text
    k8s = host.file(f"{DEFAULTS['containerd_registry_config_path']}/registry.k8s.io/hosts.toml").content_string
    assert 'capabilities = ["pull"]' in k8s
    assert 'ca = "/etc/ssl/certs/ca-certificates.crt"' in k8s
    assert "server =" not in k8s


def test_ctr04_pull_goes_through_the_mirror_first(host: Any) -> None:
    # A listener on the mirror's loopback address (a transient systemd unit) records what containerd asks for; it
    # answers 404, so containerd then tries the upstream server (loopback too, nothing listening) and the pull
    # fails: the order is the point.
    unit = "molecule-mirror-listener"
    host.check_output(
        f"systemd-run --unit {unit} --working-directory /tmp python3 -u -m http.server {MIRROR_PORT} --bind 127.0.0.1"
    )
    try:
        host.check_output(
            f"for i in $(seq 100); do journalctl -u {unit} | grep -q Serving && exit 0; sleep 0.1; done; exit 1"
        )
        pull = host.run(
            "timeout 30 ctr images pull --hosts-dir "
            f"{DEFAULTS['containerd_registry_config_path']} upstream.auxip.test/library/pause:3.10"
        )
        assert pull.rc != 0
        requests = host.check_output(f"journalctl -u {unit} --no-pager")
        assert "/v2/upstream-proxy/library/pause/manifests/3.10?ns=upstream.auxip.test" in requests, requests
        # Then the upstream server, as hosts.toml names it.
        assert "upstream.auxip.test:8444" in pull.stderr
    finally:
        host.run(f"systemctl stop {unit}")


def test_ctr05_crictl_config(host: Any) -> None:
    root_file(host, DEFAULTS["containerd_crictl_config_file"], 0o644)
    config = yaml.safe_load(host.file(DEFAULTS["containerd_crictl_config_file"]).content_string)
    assert config["runtime-endpoint"] == "unix:///run/containerd/containerd.sock"
    assert config["image-endpoint"] == "unix:///run/containerd/containerd.sock"


def test_ctr06_service_enabled_and_running(host: Any) -> None:
    service = host.service("containerd")
    assert service.is_enabled
    assert service.is_running
    socket = host.file("/run/containerd/containerd.sock")
    assert socket.is_socket
    assert (socket.user, socket.group, socket.mode) == ("root", "root", 0o660)
    # The daemon answers on its socket (client and server versions).
    assert "Server:" in host.check_output("ctr version")

"""The podman host harness itself: two systemd hosts boot, testinfra and Ansible both reach them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from auxip_testing.hosts import TestHosts

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

NODES = ["node1", "node2"]


@pytest.fixture(scope="module")
def hosts(test_hosts: Callable[..., TestHosts]) -> TestHosts:
    return test_hosts(NODES)


@pytest.mark.parametrize("name", NODES)
def test_systemd_is_pid1_and_booted(hosts: TestHosts, name: str) -> None:
    host = hosts.testinfra(name)
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running")
    assert state.stdout.strip() in ("running", "degraded"), state.stdout + state.stderr


@pytest.mark.parametrize("name", NODES)
def test_hostname_and_python(hosts: TestHosts, name: str) -> None:
    host = hosts.testinfra(name)
    assert host.check_output("hostname") == name
    assert host.exists("python3")
    assert host.file("/usr/bin/python3").exists
    # Each host gets its own machine id (the image ships an empty one), as separate machines would.
    assert host.file("/etc/machine-id").content_string.strip()


def test_machine_ids_differ(hosts: TestHosts) -> None:
    ids = {hosts.testinfra(name).file("/etc/machine-id").content_string.strip() for name in NODES}
    assert len(ids) == len(NODES)


def test_inventory_names_hosts_and_podman_connection(hosts: TestHosts) -> None:
    text = hosts.inventory_path.read_text()
    assert "ansible_connection=containers.podman.podman" in text
    assert "ansible_python_interpreter=/usr/bin/python3" in text
    for name in NODES:
        assert f"{name} ansible_host={hosts.container(name)}" in text
    assert hosts.names == NODES


def test_ansible_ping_reaches_every_host(hosts: TestHosts) -> None:
    result = hosts.ansible("all", "-m", "ansible.builtin.ping", "--one-line")
    assert result.returncode == 0, result.stdout + result.stderr
    answered = set(re.findall(r"^(\S+) \| SUCCESS => .*\"ping\": \"pong\"", result.stdout, re.MULTILINE))
    assert answered == set(NODES), result.stdout


def test_ansible_uses_a_collection_module(hosts: TestHosts) -> None:
    """A module from the offline collections (not ansible.builtin) runs on the hosts."""
    result = hosts.ansible(
        "node1", "-m", "community.general.ini_file", "-a", "path=/tmp/auxip.ini section=s option=o value=v mode=0600"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert hosts.testinfra("node1").file("/tmp/auxip.ini").contains("^o = v")


def test_factory_reuses_running_hosts(test_hosts: Callable[..., TestHosts], hosts: TestHosts) -> None:
    again = test_hosts(["node1"], groups={"primary": ["node1"]})
    assert again.container("node1") == hosts.container("node1")
    assert "[primary]\nnode1" in again.inventory_path.read_text()

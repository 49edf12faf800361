"""Checks of the motd role on the molecule instance, through `podman exec` (testinfra's podman backend).

Molecule's inventory uses Ansible's podman connection, which testinfra only supports through its slow Ansible
backend (a few seconds per command); the instance names from that inventory are the container names, so each is
addressed directly as `podman://NAME` instead.
"""

from __future__ import annotations

from typing import Any

from auxip_testing.molecule_checks import podman_hosts

testinfra_hosts = podman_hosts()


def test_motd_written_with_defaults(host: Any) -> None:
    motd = host.file("/etc/motd")
    assert motd.is_file
    assert motd.user == "root"
    assert motd.group == "root"
    assert motd.mode == 0o644
    assert "Copernicus Sentinel-1 AUXIP platform" in motd.content_string
    assert "Environment: test" in motd.content_string
    assert "Ansible managed" in motd.content_string


def test_host_runs_systemd(host: Any) -> None:
    assert host.process.get(pid=1).comm == "systemd"
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")

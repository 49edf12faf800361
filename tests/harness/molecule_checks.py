"""What the molecule scenarios' testinfra checks share (`ansible/roles/*/molecule/default/tests/test_default.py`).

Molecule's inventory uses Ansible's podman connection, which testinfra only supports through its slow Ansible
backend (a few seconds per command); the instance names from that inventory are the container names, so each is
addressed directly as `podman://NAME` instead. The verifier runs the project's venv, so this module is importable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml


def molecule_inventory() -> dict[str, Any]:
    """The inventory molecule wrote for this scenario's instances."""
    inventory: dict[str, Any] = yaml.safe_load(Path(os.environ["MOLECULE_INVENTORY_FILE"]).read_text()) or {}
    return inventory


def hosts_of(group: dict[str, Any]) -> list[str]:
    """Host names of an inventory group and of its children, recursively."""
    names = list((group.get("hosts") or {}).keys())
    for child in (group.get("children") or {}).values():
        names += hosts_of(child or {})
    return names


def podman_hosts() -> list[str]:
    """`testinfra_hosts` for a scenario: every instance, as a podman container."""
    return [f"podman://{name}" for name in sorted(set(hosts_of(molecule_inventory().get("all") or {})))]


def root_file(host: Any, path: str, mode: int) -> None:
    item = host.file(path)
    assert item.exists, path
    assert (item.user, item.group, item.mode) == ("root", "root", mode), path


def settings(host: Any, path: str, separator: str = r"\s+") -> dict[str, str]:
    """KEY VALUE lines of a configuration file (a bare KEY maps to ""), comments and blank lines left out."""
    values: dict[str, str] = {}
    for line in host.file(path).content_string.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, *value = re.split(separator, stripped, maxsplit=1)
            values[key] = value[0] if value else ""
    return values


@pytest.fixture
def vm_only(host: Any) -> None:
    """Skip in a container: the check needs the host's own kernel (sysctl, audit, modules, AppArmor)."""
    if host.run("systemd-detect-virt --container").rc == 0:
        pytest.skip("needs a VM: a container shares the kernel of its host")


#: Marks a check that needs a VM; the test module must import `vm_only` so the fixture is found.
needs_vm = pytest.mark.usefixtures("vm_only")

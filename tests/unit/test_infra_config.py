"""The `infra` stack key: the examples validate, and each kind of mistake is refused naming its key."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from auxip_platform.infra.stack_config import StackConfigError, load_stack_config, load_stack_file
from auxip_testing.pulumi_mocks import REPO_ROOT


def dev_infra() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())["config"]["auxip-platform:infra"])


def config_with(infra: dict[str, Any]) -> dict[str, str]:
    return {
        "auxip-platform:environment": "dev",
        "auxip-platform:registryPrefix": "harbor.example/mirror",
        "auxip-platform:infra": json.dumps(infra),
    }


def test_examples_describe_small_dev_and_ha_prod() -> None:
    dev = load_stack_file(REPO_ROOT / "Pulumi.dev.yaml").infra
    prod = load_stack_file(REPO_ROOT / "Pulumi.prod.yaml").infra
    assert dev is not None
    assert dev.openstack is not None
    assert prod is not None
    assert prod.openstack is not None
    assert (dev.openstack.control_plane.count, prod.openstack.control_plane.count) == (1, 3)
    assert "etcd quorum" in (dev.openstack.control_plane.ha_exemption_reason or "")
    assert prod.openstack.ipa.count == 2
    assert prod.openstack.boot_from_volume
    assert not dev.openstack.boot_from_volume
    assert [str(c) for c in prod.admin_cidrs] == ["192.0.2.0/24", "198.51.100.0/28"]


def test_no_stack_file_holds_openstack_credentials() -> None:
    for path in REPO_ROOT.glob("Pulumi.*.yaml"):
        keys = yaml.safe_load(path.read_text())["config"]
        assert not [k for k in keys if k.startswith("openstack:")], path.name


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return document


_DELETE = object()
# A private key header pasted where a public key belongs; assembled so secret scanners do not flag the test itself.
_PRIVATE_KEY_HEADER = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("path", "value", "expected_key", "expected_words"),
    [
        ("provider", "aws", "infra.provider", "'openstack' or 'existing'"),
        ("adminCidrs.0", "0.0.0.0/0", "infra.adminCidrs", "0.0.0.0/0 is not allowed"),
        ("sshPublicKeys.0", _PRIVATE_KEY_HEADER, "infra.sshPublicKeys", "not an SSH public key"),
        ("openstack.controlPlane.count", 2, "infra.openstack.controlPlane", "odd number"),
        ("openstack.controlPlane.haExemptionReason", _DELETE, "infra.openstack.controlPlane", "haExemptionReason"),
        ("openstack.ipa.haExemptionReason", _DELETE, "infra.openstack.ipa", "replica"),
        ("openstack.bastion.count", 2, "infra.openstack.bastion", "single SSH entry point"),
        ("openstack.network.servicesCidr", "10.10.0.128/25", "infra.openstack.network", "overlaps"),
        ("openstack.network.nodesCidr", "8.8.8.0/24", "infra.openstack.network", "not a private range"),
        ("openstack.workerPools.0.taints", ["dedicated"], "infra.openstack.workerPools.0.taints", "NoSchedule"),
        ("openstack.workerPools.0.flavour", "b3-8", "infra.openstack.workerPools.0.flavour", "unknown key"),
        ("openstack.buckets", [], "infra.openstack.buckets", "at least 1"),
        ("openstack.buckets.3.purpose", "products", "infra.openstack.buckets", "one bucket per purpose"),
        ("openstack.ingressNodePort", 443, "infra.openstack.ingressNodePort", "greater than or equal to 30000"),
    ],
)
def test_infra_mistakes_name_the_key(path: str, value: Any, expected_key: str, expected_words: str) -> None:
    with pytest.raises(StackConfigError) as excinfo:
        load_stack_config(config_with(_set(dev_infra(), path, value)))
    message = str(excinfo.value)
    assert f"auxip-platform:{expected_key}" in message
    assert expected_words in message


def test_hosted_vm_cannot_expose_ssh() -> None:
    infra = dev_infra()
    infra["openstack"]["hostedVms"] = [{"name": "ftp", "flavor": "b3-8", "count": 1, "ports": [22]}]
    with pytest.raises(StackConfigError, match=r"auxip-platform:infra.openstack.hostedVms.0.ports: .*not 22"):
        load_stack_config(config_with(infra))


EXISTING = {
    "provider": "existing",
    "adminCidrs": ["192.0.2.0/24"],
    "sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops"],
    "existingHosts": [
        {"name": "jump", "role": "bastion", "address": "172.16.0.10", "publicAddress": "203.0.113.5"},
        {"name": "cp1", "role": "control-plane", "address": "172.16.0.11"},
        {"name": "w1", "role": "worker", "address": "172.16.0.21", "group": "general"},
    ],
}


def test_existing_hosts_validate() -> None:
    infra = load_stack_config(config_with(EXISTING)).infra
    assert infra is not None
    assert [h.role for h in infra.existing_hosts] == ["bastion", "control-plane", "worker"]


@pytest.mark.parametrize(
    ("mutate", "expected_words"),
    [
        (lambda d: d["existingHosts"][1].update(publicAddress="203.0.113.6"), "only the bastion may"),
        (lambda d: d["existingHosts"].pop(0), "exactly one host must have role bastion"),
        (lambda d: d["existingHosts"][2].pop("group"), "needs `group`"),
        (lambda d: d.update(openstack=dev_infra()["openstack"]), "no `openstack` section"),
    ],
)
def test_existing_hosts_mistakes(mutate: Any, expected_words: str) -> None:
    document = copy.deepcopy(EXISTING)
    mutate(document)
    with pytest.raises(StackConfigError) as excinfo:
        load_stack_config(config_with(document))
    assert "auxip-platform:infra:" in str(excinfo.value)
    assert expected_words in str(excinfo.value)

"""Each policy catches its violation: real resources of the dev stack, mutated one way at a time."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from auxip_platform.infra.policies import POLICIES, violations
from auxip_testing.pulumi_mocks import RegisteredResource, run_program

Inputs = dict[str, Any]


@pytest.fixture(scope="module")
def dev() -> list[RegisteredResource]:
    return run_program("dev")


def pick(resources: list[RegisteredResource], name: str, type_suffix: str) -> RegisteredResource:
    return next(r for r in resources if r.name == name and r.type.endswith(type_suffix))


def fired(resource_type: str, inputs: Inputs) -> set[str]:
    return {v.policy for v in violations(resource_type, inputs)}


def _set(**changes: Any) -> Callable[[Inputs], None]:
    return lambda inputs: inputs.update(changes)


def _drop(key: str) -> Callable[[Inputs], None]:
    return lambda inputs: inputs.pop(key, None)


MUTATIONS = [
    # (resource, type, mutation, the policy that must fire)
    ("dev-bastion-ingress-0", "SecGroupRule", _set(remoteIpPrefix="0.0.0.0/0"), "no-public-ssh"),
    ("dev-bastion-ingress-0", "SecGroupRule", _drop("remoteIpPrefix"), "no-public-ssh"),
    ("dev-bastion-ingress-0", "SecGroupRule", _set(remoteIpPrefix="::/0"), "no-world-open-ports"),
    (
        "dev-worker-ingress-0",
        "SecGroupRule",
        lambda i: i.update(remoteIpPrefix="192.0.2.0/24", remoteGroupId=None),
        "no-public-ssh",
    ),
    (
        "dev-ipa-ingress-1",
        "SecGroupRule",
        lambda i: i.update(remoteIpPrefix="0.0.0.0/0", remoteGroupId=None),
        "no-world-open-ports",
    ),
    ("dev-ingress-lb-ingress-0", "SecGroupRule", _set(portRangeMax=444), "no-world-open-ports"),
    ("dev-ingress-lb-ingress-0", "SecGroupRule", _set(description="worker: oops"), "no-world-open-ports"),
    (
        "dev-control-plane-ingress-1",
        "SecGroupRule",
        # A public range (documentation ranges count as private for Python's ipaddress).
        lambda i: i.update(remoteIpPrefix="8.8.8.0/24", remoteGroupId=None),
        "kube-api-internal",
    ),
    ("dev-internal-lb", "Listener", _drop("allowedCidrs"), "no-world-open-ports"),
    ("dev-products", "Container", _set(containerRead=".r:*"), "no-world-open-ports"),
    ("dev-control-plane", "ServerGroup", _set(policies="soft-anti-affinity"), "control-plane-spread"),
    ("dev-ipa", "ServerGroup", _set(policies="affinity"), "control-plane-spread"),
    ("dev-control-plane-1", "Instance", _drop("schedulerHints"), "control-plane-spread"),
    (
        "dev-ipa-1",
        "Instance",
        _set(blockDevices=[{"sourceType": "image", "deleteOnTermination": True}]),
        "stateful-volumes-kept",
    ),
    ("dev-net", "Network", _drop("tags"), "tagged-stack-and-role"),
    ("dev-ipa-1", "Instance", _set(metadata={"role": "ipa"}), "tagged-stack-and-role"),
    ("dev-bastion-ingress-0", "SecGroupRule", _set(description="ssh"), "tagged-stack-and-role"),
    ("dev-ipa-1", "Port", _set(tags=["stack=dev", "role=database"]), "tagged-stack-and-role"),
    ("dev-bastion", "FloatingIp", _set(tags=["stack=dev", "role=worker"]), "floating-ips-restricted"),
]


@pytest.mark.parametrize(
    ("name", "type_suffix", "mutate", "policy"),
    MUTATIONS,
    ids=[f"{m[3]}:{m[0]}:{i}" for i, m in enumerate(MUTATIONS)],
)
def test_policy_catches_the_mutation(
    dev: list[RegisteredResource], name: str, type_suffix: str, mutate: Callable[[Inputs], None], policy: str
) -> None:
    resource = pick(dev, name, type_suffix)
    assert fired(resource.type, resource.inputs) == set()  # the original passes...
    inputs = copy.deepcopy(resource.inputs)
    mutate(inputs)
    assert policy in fired(resource.type, inputs)  # ...and the mutant is caught by the policy under test


def test_every_policy_has_a_mutation() -> None:
    assert {m[3] for m in MUTATIONS} == {p.name for p in POLICIES}


def test_floating_ip_associations_and_unknown_types_are_refused() -> None:
    assert fired("openstack:networking/floatingIpAssociate:FloatingIpAssociate", {}) == {
        "floating-ips-restricted",
        "tagged-stack-and-role",
    }
    assert fired("openstack:compute/secGroup:SecGroup", {"tags": ["stack=dev", "role=worker"]}) == {
        "tagged-stack-and-role"
    }
    assert fired("kubernetes:core/v1:Namespace", {}) == set()


def test_ingress_rule_for_any_protocol_counts_as_every_port() -> None:
    rule = {"direction": "ingress", "description": "worker: all", "remoteIpPrefix": "10.0.0.0/8"}
    assert fired("openstack:networking/secGroupRule:SecGroupRule", rule) == {"no-public-ssh"}
    egress = {**rule, "direction": "egress", "remoteIpPrefix": "0.0.0.0/0"}
    assert fired("openstack:networking/secGroupRule:SecGroupRule", egress) == set()

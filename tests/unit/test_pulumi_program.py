"""The Pulumi program under mocks: layers are wired as components and children are parented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auxip_testing.pulumi_mocks import REPO_ROOT, ProgramError, RegisteredResource, run_program


@pytest.fixture(scope="module")
def dev() -> list[RegisteredResource]:
    return run_program("dev")


@pytest.fixture(scope="module")
def prod() -> list[RegisteredResource]:
    return run_program("prod")


def by_type(resources: list[RegisteredResource], type_token: str) -> list[RegisteredResource]:
    return [r for r in resources if r.type == type_token]


def test_every_layer_is_a_component_under_the_stack(dev: list[RegisteredResource]) -> None:
    # The layers are the components directly under the stack; a layer's own sub-components (the infra layer's
    # network, security groups, VM groups...; the baseline's PriorityClasses) must all sit inside that layer.
    stack_urn = next(r.parent for r in dev if r.type == "auxip:infra:Infra")
    components = {r.type: r for r in dev if not r.custom and r.parent == stack_urn}
    nested = [r for r in dev if not r.custom and r.parent != stack_urn]
    by_urn = {r.urn: r for r in dev}

    def layer_of(resource: RegisteredResource) -> RegisteredResource:
        while resource.parent != stack_urn:
            resource = by_urn[resource.parent]
        return resource

    assert {r.type.split(":")[1] for r in nested} >= {"infra", "platform"}
    assert all(r.type.split(":")[1] == layer_of(r).type.split(":")[1] for r in nested)
    assert set(components) == {
        "auxip:infra:Infra",
        "auxip:platform:Baseline",
        "auxip:security:Security",
        "auxip:monitoring:Monitoring",
        "auxip:apps:Apps",
    }
    assert all(r.parent.endswith("pulumi:pulumi:Stack::auxip-platform-dev") for r in components.values())


def test_namespaces_are_children_of_the_baseline_with_restricted_pod_security(dev: list[RegisteredResource]) -> None:
    baseline = by_type(dev, "auxip:platform:Baseline")[0]
    # The system namespaces (platform/system_namespaces.py) are the baseline's too; tests/unit/test_baseline.py.
    namespaces = [
        ns
        for ns in by_type(dev, "kubernetes:core/v1:Namespace")
        if "auxip.esa.int/namespace-class" not in ns.inputs["metadata"]["labels"]
    ]
    assert sorted(ns.inputs["metadata"]["name"] for ns in namespaces) == [
        "auxip",
        "auxip-catalog",
        "auxip-ingest",
        "monitoring",
    ]
    for ns in namespaces:
        assert ns.parent == baseline.urn
        labels = ns.inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.31"


def test_each_namespace_gets_default_deny_and_dns(prod: list[RegisteredResource]) -> None:
    policies = by_type(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    namespaces = {ns.inputs["metadata"]["name"] for ns in by_type(prod, "kubernetes:core/v1:Namespace")}
    deny = {p.inputs["metadata"]["namespace"]: p for p in policies if p.inputs["metadata"]["name"] == "default-deny"}
    assert set(deny) == namespaces
    for policy in deny.values():
        assert policy.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = [p for p in policies if p.inputs["metadata"]["name"] == "allow-dns"]
    assert len(dns) == len(namespaces)
    assert {port["port"] for port in dns[0].inputs["spec"]["egress"][0]["ports"]} == {53}


def test_exempt_namespace_carries_its_reason(prod: list[RegisteredResource]) -> None:
    logging = next(
        r for r in by_type(prod, "kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == "logging"
    )
    assert logging.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert "hostPath" in logging.inputs["metadata"]["annotations"]["auxip.esa.int/pod-security-exemption"]


def test_disabled_layer_is_not_built(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "__main__.py", tmp_path)
    (tmp_path / "Pulumi.t.yaml").write_text(
        "config:\n  auxip-platform:environment: dev\n  auxip-platform:registryPrefix: r.example\n"
        "  auxip-platform:layers:\n    platform: false\n"
    )
    types = {r.type for r in run_program("t", project_dir=tmp_path)}
    assert "auxip:platform:Baseline" not in types
    assert "kubernetes:core/v1:Namespace" not in types
    assert "auxip:infra:Infra" in types


def test_bad_config_fails_the_program_naming_the_key(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "__main__.py", tmp_path)
    (tmp_path / "Pulumi.t.yaml").write_text(
        "config:\n  auxip-platform:environment: qa\n  auxip-platform:registryPrefix: r.example\n"
    )
    with pytest.raises(ProgramError, match=r"auxip-platform:environment: Input should be 'dev', 'staging' or 'prod'"):
        run_program("t", project_dir=tmp_path)

"""The baseline under the Pulumi mocks: system namespaces, quotas and limit ranges, PriorityClasses and parents."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_platform.infra.stack_config import DEFAULT_QUOTA_PROFILES
from auxip_platform.platform.priority import (
    BUILT_IN_CLASSES,
    DECLARED_CLASSES,
    PRIORITY_CLASSES,
    WORKLOAD_DEFAULT,
    PriorityClassesArgs,
    PriorityClassSpec,
)
from auxip_platform.platform.system_namespaces import (
    KUBE_SYSTEM,
    SYSTEM_LABEL,
    SYSTEM_NAMESPACES,
    SystemNamespace,
    managed_system_namespaces,
)
from auxip_testing.pulumi_mocks import REPO_ROOT, RegisteredResource, run_program

NAMESPACE = "kubernetes:core/v1:Namespace"
QUOTA = "kubernetes:core/v1:ResourceQuota"
LIMIT_RANGE = "kubernetes:core/v1:LimitRange"
PRIORITY_CLASS = "kubernetes:scheduling.k8s.io/v1:PriorityClass"


@pytest.fixture(scope="module")
def prod() -> list[RegisteredResource]:
    return run_program("prod")


def of_type(resources: list[RegisteredResource], type_token: str) -> list[RegisteredResource]:
    return [r for r in resources if r.type == type_token]


def in_namespace(resources: list[RegisteredResource], type_token: str, namespace: str) -> list[RegisteredResource]:
    return [r for r in of_type(resources, type_token) if r.inputs["metadata"]["namespace"] == namespace]


def namespaces(resources: list[RegisteredResource]) -> dict[str, RegisteredResource]:
    return {r.inputs["metadata"]["name"]: r for r in of_type(resources, NAMESPACE)}


# The declarations ------------------------------------------------------------------------------------------------


def test_every_exemption_has_a_reason_and_only_exemptions_do() -> None:
    exempt = {ns.name for ns in SYSTEM_NAMESPACES.values() if ns.pod_security != "restricted"}
    assert exempt == {"kube-system", "tigera-operator", "calico-system", "node-monitoring", "logging"}
    assert all(len((SYSTEM_NAMESPACES[name].reason or "").split()) >= 8 for name in exempt)
    assert all(ns.reason is None for ns in SYSTEM_NAMESPACES.values() if ns.name not in exempt)


@pytest.mark.parametrize(
    ("level", "reason"), [("privileged", None), ("baseline", None), ("restricted", "no need, but explained")]
)
def test_a_declaration_without_matching_reason_is_refused(level: Any, reason: str | None) -> None:
    with pytest.raises(ValueError, match="a reason is required exactly when not restricted"):
        SystemNamespace("x", "y", level, reason, "operator", WORKLOAD_DEFAULT)


def test_declarations_refer_to_existing_profiles_and_classes() -> None:
    for ns in SYSTEM_NAMESPACES.values():
        assert ns.quota_profile in DEFAULT_QUOTA_PROFILES, ns.name
        assert ns.priority_class in DECLARED_CLASSES | BUILT_IN_CLASSES, ns.name
    assert KUBE_SYSTEM not in [ns.name for ns in managed_system_namespaces()]


def test_priority_classes_have_one_default_and_descending_values() -> None:
    assert [spec.name for spec in PRIORITY_CLASSES if spec.global_default] == [WORKLOAD_DEFAULT]
    values = [spec.value for spec in PRIORITY_CLASSES]
    assert values == sorted(values, reverse=True)
    # Far below the built-in system classes (2,000,000,000), which only the CNI and the distribution use.
    assert max(values) < 1_000_000_000


@pytest.mark.parametrize("defaults", [0, 2])
def test_priority_classes_args_refuse_anything_but_one_default(defaults: int) -> None:
    classes = tuple(
        PriorityClassSpec(f"c{i}", 10 - i, "Never", "a class", global_default=i < defaults) for i in range(3)
    )
    with pytest.raises(ValueError, match="exactly one PriorityClass must be the global default"):
        PriorityClassesArgs(classes)


# What the program registers --------------------------------------------------------------------------------------


def test_system_namespaces_carry_their_declared_level_reason_and_label(prod: list[RegisteredResource]) -> None:
    rendered = namespaces(prod)
    baseline = of_type(prod, "auxip:platform:Baseline")[0]
    assert KUBE_SYSTEM not in rendered  # the distribution's: never created or relabelled
    for declared in managed_system_namespaces():
        ns = rendered[declared.name]
        assert ns.parent == baseline.urn
        metadata = ns.inputs["metadata"]
        assert metadata["labels"][SYSTEM_LABEL] == "system"
        for mode in ("enforce", "audit", "warn"):
            assert metadata["labels"][f"pod-security.kubernetes.io/{mode}"] == declared.pod_security
        annotations = metadata.get("annotations") or {}
        assert annotations.get("auxip.esa.int/pod-security-exemption") == declared.reason


def test_stack_namespaces_are_not_labelled_system(prod: list[RegisteredResource]) -> None:
    rendered = namespaces(prod)
    for name in ("auxip", "auxip-ingest", "hosted-mp"):
        assert SYSTEM_LABEL not in rendered[name].inputs["metadata"]["labels"]


def test_every_namespace_has_one_quota_and_one_limit_range_as_its_children(prod: list[RegisteredResource]) -> None:
    for name, ns in namespaces(prod).items():
        quotas = [q for q in in_namespace(prod, QUOTA, name) if "scopeSelector" not in q.inputs["spec"]]
        limits = in_namespace(prod, LIMIT_RANGE, name)
        assert (len(quotas), len(limits)) == (1, 1), name
        assert quotas[0].parent == ns.urn, name
        assert limits[0].parent == ns.urn, name


def test_system_namespace_quota_is_its_profile(prod: list[RegisteredResource]) -> None:
    (quota,) = in_namespace(prod, QUOTA, "kafka")
    assert quota.inputs["spec"]["hard"] == {
        "requests.cpu": "8",
        "requests.memory": "32Gi",
        "limits.cpu": "16",
        "limits.memory": "64Gi",
        "pods": "40",
        "persistentvolumeclaims": "30",
        "requests.storage": "4Ti",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    (limits,) = in_namespace(prod, LIMIT_RANGE, "kafka")
    assert limits.inputs["spec"]["limits"] == [
        {
            "type": "Container",
            "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
            "default": {"cpu": "1", "memory": "2Gi"},
            "max": {"cpu": "4", "memory": "16Gi"},
        }
    ]


def test_only_the_reverse_proxy_may_have_load_balancers(prod: list[RegisteredResource]) -> None:
    allowed = {
        q.inputs["metadata"]["namespace"]
        for q in of_type(prod, QUOTA)
        if q.inputs["spec"]["hard"].get("services.loadbalancers", "0") != "0"
    }
    assert allowed == {"kong"}


def test_built_in_critical_class_is_admitted_where_declared_only(prod: list[RegisteredResource]) -> None:
    scoped = {
        q.inputs["metadata"]["namespace"]: q.inputs["spec"]
        for q in of_type(prod, QUOTA)
        if "scopeSelector" in q.inputs["spec"]
    }
    assert set(scoped) == {"calico-system", "tigera-operator"}
    assert scoped["calico-system"] == {
        "hard": {"pods": "300"},
        "scopeSelector": {
            "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["system-node-critical"]}]
        },
    }


def test_priority_classes_are_children_of_their_component_in_the_baseline(prod: list[RegisteredResource]) -> None:
    baseline = of_type(prod, "auxip:platform:Baseline")[0]
    (component,) = of_type(prod, "auxip:platform:PriorityClasses")
    assert component.parent == baseline.urn
    classes = {r.inputs["metadata"]["name"]: r for r in of_type(prod, PRIORITY_CLASS)}
    assert set(classes) == DECLARED_CLASSES
    assert all(r.parent == component.urn for r in classes.values())
    assert {name: (r.inputs["value"], r.inputs["preemptionPolicy"]) for name, r in classes.items()} == {
        "auxip-platform-critical": (1_000_000, "PreemptLowerPriority"),
        "auxip-workload-high": (100_000, "PreemptLowerPriority"),
        "auxip-workload-default": (10_000, "Never"),
        "auxip-batch-low": (1_000, "Never"),
    }
    assert [name for name, r in classes.items() if r.inputs["globalDefault"]] == [WORKLOAD_DEFAULT]


def test_hosted_app_deployments_name_the_default_class(prod: list[RegisteredResource]) -> None:
    deployments = of_type(prod, "kubernetes:apps/v1:Deployment")
    assert {d.inputs["metadata"]["namespace"] for d in deployments} >= {"hosted-mp", "hosted-sra"}
    hosted = [d for d in deployments if d.inputs["metadata"]["namespace"].startswith("hosted-")]
    assert {d.inputs["spec"]["template"]["spec"]["priorityClassName"] for d in hosted} == {WORKLOAD_DEFAULT}


def test_configured_quota_profile_sizes_the_namespace(tmp_path: Path) -> None:
    # A stack's own profile, and an override of a built-in one, both reach the rendered objects.
    # The dev stack with its own profile for one namespace and an override of the built-in `default` profile.
    shutil.copy(REPO_ROOT / "__main__.py", tmp_path)
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    # Without the AUXIP's services, which would not fit in these profiles (tests/unit/test_auxip_deploy.py checks that
    # the stack config refuses them then).
    del document["config"]["auxip-platform:apps"]
    compute = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}
    kubernetes = document["config"]["auxip-platform:kubernetes"]
    kubernetes["namespaces"] = [
        {**ns, "quota": "tiny"} if ns["name"] == "auxip" else ns for ns in kubernetes["namespaces"]
    ]
    assert "auxip-ingest" in [ns["name"] for ns in kubernetes["namespaces"]]
    kubernetes |= {
        "quotaProfiles": {
            "tiny": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "1", "memory": "2Gi"},
                "pods": 5,
                "container": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "100m", "memory": "128Mi"},
                    "max": {"cpu": "500m", "memory": "1Gi"},
                },
            },
            "default": {
                "requests": {"cpu": "2", "memory": "4Gi"},
                "limits": {"cpu": "4", "memory": "8Gi"},
                "pods": 10,
                "container": {**compute, "max": {"cpu": "1", "memory": "1Gi"}},
            },
        },
    }
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump(document))
    resources = run_program("t", project_dir=tmp_path)
    (tiny,) = in_namespace(resources, QUOTA, "auxip")
    assert tiny.inputs["spec"]["hard"] == {
        "requests.cpu": "500m",
        "requests.memory": "1Gi",
        "limits.cpu": "1",
        "limits.memory": "2Gi",
        "pods": "5",
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    (tiny_limits,) = in_namespace(resources, LIMIT_RANGE, "auxip")
    assert tiny_limits.inputs["spec"]["limits"][0]["default"] == {"cpu": "100m", "memory": "128Mi"}
    (default,) = in_namespace(resources, QUOTA, "auxip-ingest")
    assert (default.inputs["spec"]["hard"]["pods"], default.inputs["spec"]["hard"]["limits.cpu"]) == ("10", "4")
    # The built-in profiles the stack does not override are still there for the system namespaces.
    (kong,) = in_namespace(resources, QUOTA, "kong")
    assert kong.inputs["spec"]["hard"]["services.loadbalancers"] == "2"

"""A workload's API access: a Role and RoleBinding in its namespace, refused when wider than the workload needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from auxip_platform.platform.policy import check_objects
from auxip_platform.platform.rbac import AccessRule, WorkloadAccessArgs
from auxip_testing.pulumi_mocks import run_program
from auxip_testing.render import kubernetes_objects, validate_objects

PROGRAM = """
import pulumi
from auxip_platform.platform.rbac import AccessRule, WorkloadAccess, WorkloadAccessArgs

WorkloadAccess(
    "ingest-access",
    WorkloadAccessArgs(
        namespace="auxip-ingest",
        service_account="ingest",
        rules=(AccessRule(api_groups=("",), resources=("configmaps",), verbs=("get", "watch"),
                          resource_names=("auxip-routes",)),),
    ),
)
"""

ROUTES = AccessRule(api_groups=("",), resources=("configmaps",), verbs=("get",), resource_names=("auxip-routes",))


def test_role_and_binding_are_namespaced_children_with_exactly_the_rules(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    (tmp_path / "Pulumi.t.yaml").write_text("config: {}\n")
    resources = run_program("t", project_dir=tmp_path)
    (component,) = [r for r in resources if r.type == "auxip:platform:WorkloadAccess"]
    objects = {r.type.rsplit(":", 1)[1]: r for r in resources if r.custom}
    assert set(objects) == {"Role", "RoleBinding"}
    assert all(r.parent == component.urn for r in objects.values())
    role, binding = objects["Role"].inputs, objects["RoleBinding"].inputs
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "auxip-ingest"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch"], "resourceNames": ["auxip-routes"]}
    ]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ingest"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ingest", "namespace": "auxip-ingest"}]
    rendered = kubernetes_objects(resources)
    assert validate_objects(rendered, "1.31") == []
    assert check_objects(rendered, "r.example") == []


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (AccessRule(("",), ("*",), ("get",)), "rules[0]: resources contains '*'"),
        (AccessRule(("*",), ("pods",), ("get",)), "rules[0]: apiGroups contains '*'"),
        (AccessRule(("",), ("pods",), ("*",)), "rules[0]: verbs contains '*'"),
        (AccessRule(("",), ("pods",), ()), "rules[0]: verbs is empty"),
        (AccessRule(("rbac.authorization.k8s.io",), ("roles",), ("escalate", "bind")), "verbs bind, escalate are not"),
        (AccessRule(("",), ("users",), ("impersonate",)), "verbs impersonate are not granted to workloads"),
        (AccessRule(("",), ("secrets",), ("get",), ("*",)), "resourceNames contains '*'"),
    ],
)
def test_too_wide_rules_are_refused_naming_the_rule(rule: AccessRule, problem: str) -> None:
    with pytest.raises(ValueError, match="auxip/api: ") as error:
        WorkloadAccessArgs("auxip", "api", (ROUTES, rule))
    assert problem.replace("rules[0]", "rules[1]") in str(error.value)


def test_no_rules_means_no_role() -> None:
    with pytest.raises(ValueError, match="no rules; a workload without API access gets no Role at all"):
        WorkloadAccessArgs("auxip", "api", ())

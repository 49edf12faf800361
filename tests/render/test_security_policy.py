"""The rendered objects of every example stack satisfy our security policy, and each rule rejects what it should.

The stacks render namespaces (their own and the system ones), network policies, quotas, PriorityClasses and, in
prod, the hosted applications' Deployments; their Helm releases add the operators' Deployments, Jobs and RBAC (the
upstream charts rendered with our values), which the policy checks like ours. The rules are proven on synthetic
objects, each first shown to pass schema validation, so the policy is tested on objects the API server would
accept, not on arbitrary dicts; and on chart objects rendered from deliberately wrong values.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from auxip_platform.infra.stack_config import StackConfig, load_stack_file
from auxip_platform.platform.policy import EXEMPTION_ANNOTATION, Violation, check_objects, image_problems, object_id
from auxip_platform.platform.priority import WORKLOAD_DEFAULT
from auxip_platform.platform.services.versions import accepted_violations
from auxip_platform.platform.system_namespaces import SYSTEM_NAMESPACES, managed_system_namespaces
from auxip_testing import charts
from auxip_testing.pulumi_mocks import REPO_ROOT
from auxip_testing.render import StackRender, render_stack, validate_objects

STACKS = charts.example_stacks()

#: What an upstream chart renders against a rule, that no value of the chart can change (the objects pass every other
#: rule). policy.py has no exemption for upstream objects: each is listed here with its reason, and the example
#: stacks must show exactly these, so a new violation fails and a fixed one must be removed.


@pytest.fixture(scope="module")
def renders() -> dict[str, StackRender]:
    return {name: render_stack(name) for name in STACKS}


@pytest.fixture(scope="module")
def stacks(renders: dict[str, StackRender]) -> dict[str, tuple[StackConfig, list[dict[str, Any]]]]:
    """Each stack's config and our objects (a run of the Pulumi program takes a couple of seconds: once a module)."""
    return {
        name: (load_stack_file(REPO_ROOT / f"Pulumi.{name}.yaml"), render.objects) for name, render in renders.items()
    }


@pytest.fixture
def prod(stacks: dict[str, tuple[StackConfig, list[dict[str, Any]]]]) -> tuple[StackConfig, list[dict[str, Any]]]:
    # prod has hosted applications besides the system namespaces; a deep copy so mutations never leak between tests.
    config, objects = stacks["prod"]
    return config, copy.deepcopy(objects)


def rules(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.object_id, v.rule) for v in violations}


def compliant_pod(prefix: str, namespace: str = "auxip", name: str = "api") -> dict[str, Any]:
    """A pod meeting the restricted profile, pinned, from the mirror, with requests and limits: zero violations."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "priorityClassName": WORKLOAD_DEFAULT,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": name,
                    "image": f"{prefix}/auxip/api:1.4.2",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def privileged_pod(prefix: str, namespace: str) -> dict[str, Any]:
    """What a node log collector looks like (Fluent Bit): privileged, host network, the node's /var/log mounted.

    Image and resources stay compliant so that only the Pod Security rules (P3) can object to it.
    """
    pod = compliant_pod(prefix, namespace, "fluent-bit")
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["securityContext"] = {}
    pod["spec"]["volumes"] = [{"name": "varlog", "hostPath": {"path": "/var/log"}}]
    container = pod["spec"]["containers"][0]
    container["image"] = f"{prefix}/fluent/fluent-bit:3.2.4"
    container["securityContext"] = {"privileged": True}
    container["volumeMounts"] = [{"name": "varlog", "mountPath": "/var/log", "readOnly": True}]
    return pod


def in_template(kind: str, pod: dict[str, Any]) -> dict[str, Any]:
    """`pod` as the template of a controller of `kind`, so the rules must look inside pod templates."""
    template = {"metadata": {"labels": {"app": pod["metadata"]["name"]}}, "spec": pod["spec"]}
    selector = {"matchLabels": {"app": pod["metadata"]["name"]}}
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "Deployment": ("apps/v1", {"selector": selector, "template": template}),
        "StatefulSet": ("apps/v1", {"selector": selector, "serviceName": "x", "template": template}),
        "DaemonSet": ("apps/v1", {"selector": selector, "template": template}),
        "Job": ("batch/v1", {"template": {**template, "spec": {**pod["spec"], "restartPolicy": "Never"}}}),
        "CronJob": (
            "batch/v1",
            {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": {**template, "spec": {**pod["spec"], "restartPolicy": "Never"}}}},
            },
        ),
    }
    api_version, spec = specs[kind]
    return {"apiVersion": api_version, "kind": kind, "metadata": pod["metadata"], "spec": spec}


def namespace(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == name)


# The example stacks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_has_no_violations(
    stacks: dict[str, tuple[StackConfig, list[dict[str, Any]]]], stack: str
) -> None:
    config, objects = stacks[stack]
    namespaces = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    # The check must have had something to look at: every configured and every system namespace is rendered.
    system = [ns.name for ns in managed_system_namespaces()]
    assert sorted(namespaces) == sorted([*(ns.name for ns in config.kubernetes.namespaces), *system])
    kinds = {o["kind"] for o in objects}
    assert {"ResourceQuota", "LimitRange", "PriorityClass"} <= kinds
    assert check_objects(objects, config.registry_prefix) == []


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_with_its_charts_has_only_the_upstream_violations(
    renders: dict[str, StackRender], stacks: dict[str, tuple[StackConfig, list[dict[str, Any]]]], stack: str
) -> None:
    config, _ = stacks[stack]
    render = renders[stack]
    # The operators' pods are checked: every rule applies to them as to ours (P3 in their namespaces' levels).
    workloads = {object_id(o) for o in render.chart_objects if o["kind"] in ("Deployment", "Job")}
    assert {"Deployment/kong/kong-kong", "Deployment/cert-manager/cert-manager-webhook"} <= workloads
    assert rules(check_objects(render.all_objects, config.registry_prefix)) == set(accepted_violations())
    assert check_objects(render.all_objects, config.registry_prefix, accepted_violations()) == []


def with_release_values(render: StackRender, name: str, change: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything the stack renders, with release `name` rendered again from its values merged with `change`."""
    (release,) = [r.release for r in render.releases if r.release.name == name]
    values = copy.deepcopy(release.values)
    for key, value in change.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    (redone,) = charts.render_releases([dataclasses.replace(release, values=values)], render.kubernetes_version)
    others = [r for r in render.releases if r.release.name != name]
    return dataclasses.replace(render, releases=[*others, redone]).all_objects


@pytest.mark.parametrize(
    ("name", "change", "violation"),
    [
        ("cert-manager", {"image": {"repository": "quay.io/jetstack/cert-manager-controller"}},
         ("Deployment/cert-manager/cert-manager", "P4.registry")),
        ("kong", {"containerSecurityContext": {"allowPrivilegeEscalation": True}},
         ("Deployment/kong/kong-kong", "P3.privilege-escalation")),
        ("strimzi", {"priorityClassName": ""}, ("Deployment/kafka/strimzi-cluster-operator", "P8.priority-class")),
        # null removes the key from the chart's defaults, as Helm merges values.
        ("cnpg", {"resources": None}, ("Deployment/cnpg-system/cnpg-cloudnative-pg", "P6.resources")),
    ],
)  # fmt: skip
def test_a_wrong_chart_value_is_a_violation(
    renders: dict[str, StackRender],
    stacks: dict[str, tuple[StackConfig, list[dict[str, Any]]]],
    name: str,
    change: dict[str, Any],
    violation: tuple[str, str],
) -> None:
    config, _ = stacks["prod"]
    objects = with_release_values(renders["prod"], name, change)
    assert rules(check_objects(objects, config.registry_prefix)) == {*accepted_violations(), violation}


def test_prod_logging_namespace_is_exempt_with_its_reason(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    _, objects = prod
    logging = namespace(objects, "logging")
    assert logging["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert logging["metadata"]["annotations"][EXEMPTION_ANNOTATION] == SYSTEM_NAMESPACES["logging"].reason
    assert "hostPath" in logging["metadata"]["annotations"][EXEMPTION_ANNOTATION]


@pytest.mark.parametrize("stack", STACKS)
def test_synthetic_objects_are_schema_valid(
    stacks: dict[str, tuple[StackConfig, list[dict[str, Any]]]], stack: str
) -> None:
    # The mutation tests below rely on these shapes: prove the API server would accept them.
    config, _ = stacks[stack]
    prefix = config.registry_prefix
    synthetic = [compliant_pod(prefix), privileged_pod(prefix, "auxip")]
    synthetic += [in_template(kind, privileged_pod(prefix, "auxip")) for kind in KINDS]
    assert validate_objects(synthetic, config.kubernetes.version) == []


@pytest.mark.parametrize("stack", STACKS)
def test_compliant_pod_is_accepted(stacks: dict[str, tuple[StackConfig, list[dict[str, Any]]]], stack: str) -> None:
    config, objects = stacks[stack]
    assert check_objects([*objects, compliant_pod(config.registry_prefix)], config.registry_prefix) == []


# P3: Pod Security profiles ---------------------------------------------------------------------------------------

PRIVILEGED_POD_IN_RESTRICTED = {
    "P3.host-namespaces",  # hostNetwork
    "P3.host-path",  # /var/log from the node
    "P3.privileged",
    "P3.run-as-non-root",  # nothing says non-root
    "P3.seccomp",  # no seccomp profile
    "P3.privilege-escalation",  # allowPrivilegeEscalation not false
    "P3.capabilities",  # capabilities not dropped
}
KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]


def test_privileged_pod_in_restricted_namespace_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    violations = check_objects([*objects, privileged_pod(config.registry_prefix, "auxip")], config.registry_prefix)
    assert rules(violations) == {("Pod/auxip/fluent-bit", rule) for rule in PRIVILEGED_POD_IN_RESTRICTED}
    privileged = next(v for v in violations if v.rule == "P3.privileged")
    assert privileged.message == "container 'fluent-bit' is privileged (namespace 'auxip' is restricted)"


@pytest.mark.parametrize("kind", KINDS)
def test_privileged_pod_template_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]], kind: str) -> None:
    config, objects = prod
    workload = in_template(kind, privileged_pod(config.registry_prefix, "auxip-ingest"))
    violations = check_objects([*objects, workload], config.registry_prefix)
    assert rules(violations) == {(f"{kind}/auxip-ingest/fluent-bit", rule) for rule in PRIVILEGED_POD_IN_RESTRICTED}


def test_privileged_pod_in_exempt_namespace_is_accepted(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    assert check_objects([*objects, privileged_pod(config.registry_prefix, "logging")], config.registry_prefix) == []


def test_exempt_namespace_still_gets_image_and_resource_rules(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # The exemption is from Pod Security only: the image must still come pinned from the mirror, with limits.
    config, objects = prod
    pod = privileged_pod(config.registry_prefix, "logging")
    pod["spec"]["containers"][0]["image"] = "fluent/fluent-bit:latest"
    del pod["spec"]["containers"][0]["resources"]
    violations = check_objects([*objects, pod], config.registry_prefix)
    assert rules(violations) == {
        ("Pod/logging/fluent-bit", "P4.registry"),
        ("Pod/logging/fluent-bit", "P4.unpinned"),
        ("Pod/logging/fluent-bit", "P6.resources"),
    }


def test_baseline_namespace_gets_the_baseline_profile(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # A baseline namespace (with its reason) forbids privileged pods and host access, but not running as root.
    config, objects = prod
    ns = namespace(objects, "hosted-sra")
    for mode in ("enforce", "audit", "warn"):
        ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] = "baseline"
    ns["metadata"]["annotations"] = {EXEMPTION_ANNOTATION: "the hosted SRA image runs as root (vendor build)"}
    violations = check_objects([*objects, privileged_pod(config.registry_prefix, "hosted-sra")], config.registry_prefix)
    assert rules(violations) == {
        ("Pod/hosted-sra/fluent-bit", "P3.host-namespaces"),
        ("Pod/hosted-sra/fluent-bit", "P3.host-path"),
        ("Pod/hosted-sra/fluent-bit", "P3.privileged"),
    }


def test_restricted_details(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # Each restricted-only requirement on its own: root user, an extra capability, a disallowed volume, a hostPort.
    config, objects = prod
    pod = compliant_pod(config.registry_prefix)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    container["securityContext"]["runAsUser"] = 0
    container["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE", "CHOWN"]
    container["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    spec["volumes"].append({"name": "legacy", "nfs": {"server": "nfs.internal", "path": "/export"}})
    violations = check_objects([*objects, pod], config.registry_prefix)
    assert sorted((v.rule, v.message) for v in violations) == [
        ("P3.capabilities", "container 'api' adds CHOWN (only NET_BIND_SERVICE) (namespace 'auxip' is restricted)"),
        ("P3.host-port", "container 'api' uses hostPort 8080 (namespace 'auxip' is restricted)"),
        ("P3.run-as-user", "container 'api' runAsUser is 0 (root) (namespace 'auxip' is restricted)"),
        ("P3.volume-type", "volume 'legacy' is of type nfs (namespace 'auxip' is restricted)"),
    ]


def test_pod_in_namespace_the_stack_does_not_create_is_rejected(
    prod: tuple[StackConfig, list[dict[str, Any]]],
) -> None:
    config, objects = prod
    pod = compliant_pod(config.registry_prefix)
    del pod["metadata"]["namespace"]  # lands in `default`, whose Pod Security labels the stack does not control
    violations = check_objects([*objects, pod], config.registry_prefix)
    assert violations == [
        Violation("Pod/api", "P3.unknown-namespace", "namespace 'default' is not created by this stack")
    ]


# P1: namespaces --------------------------------------------------------------------------------------------------


def test_privileged_namespace_without_exemption_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    labels = namespace(objects, "auxip")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "privileged"
    assert check_objects(objects, config.registry_prefix) == [
        Violation(
            "Namespace/auxip",
            "P1.not-restricted",
            f"enforces 'privileged' without a written reason in annotation {EXEMPTION_ANNOTATION}",
        )
    ]


def test_blank_exemption_reason_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    namespace(objects, "logging")["metadata"]["annotations"][EXEMPTION_ANNOTATION] = "  "
    assert rules(check_objects(objects, config.registry_prefix)) == {("Namespace/logging", "P1.not-restricted")}


def test_missing_enforce_and_weaker_audit_are_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    del namespace(objects, "auxip")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    security = namespace(objects, "security")["metadata"]["labels"]
    security["pod-security.kubernetes.io/audit"] = "baseline"
    del security["pod-security.kubernetes.io/warn"]  # no warnings at all is as weak as privileged
    assert [(v.object_id, v.rule, v.message) for v in check_objects(objects, config.registry_prefix)] == [
        ("Namespace/auxip", "P1.enforce-label", "label pod-security.kubernetes.io/enforce is missing"),
        ("Namespace/security", "P1.mode-weaker", "audit level 'baseline' is weaker than enforce 'restricted'"),
        ("Namespace/security", "P1.mode-weaker", "warn level 'privileged' is weaker than enforce 'restricted'"),
    ]


# P2: default-deny network policies -------------------------------------------------------------------------------


def test_missing_default_deny_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    objects = [o for o in objects if (o["kind"], o["metadata"].get("namespace")) != ("NetworkPolicy", "hosted-mp")]
    assert check_objects(objects, config.registry_prefix) == [
        Violation(
            "Namespace/hosted-mp",
            "P2.default-deny",
            "no NetworkPolicy with an empty podSelector denies Egress and Ingress by default",
        )
    ]


def test_partial_default_deny_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # Ingress-only deny in one namespace; a deny that selects only some pods in another: neither is a default deny.
    config, objects = prod
    policies = {
        o["metadata"]["namespace"]: o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "default-deny"
    }
    policies["auxip"]["spec"]["policyTypes"] = ["Ingress"]
    policies["security"]["spec"]["podSelector"] = {"matchLabels": {"app": "vault"}}
    violations = check_objects(objects, config.registry_prefix)
    assert [(v.object_id, v.rule, v.message.split(" denies ")[1]) for v in violations] == [
        ("Namespace/auxip", "P2.default-deny", "Egress by default"),
        ("Namespace/security", "P2.default-deny", "Egress and Ingress by default"),
    ]


def test_deny_with_allow_all_rule_is_not_a_default_deny(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    deny = next(
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"] == {"name": "default-deny", "namespace": "monitoring"}
    )
    deny["spec"]["ingress"] = [{}]  # one empty rule allows all ingress
    assert rules(check_objects(objects, config.registry_prefix)) == {("Namespace/monitoring", "P2.default-deny")}


# P4: images ------------------------------------------------------------------------------------------------------

PREFIX = "harbor.auxip.internal/mirror"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{PREFIX}/auxip/api:1.4.2", []),
        (f"{PREFIX}/auxip/api@sha256:{'a' * 64}", []),
        (f"{PREFIX}/auxip/api:1.4.2@sha256:{'a' * 64}", []),
        (f"{PREFIX}/auxip/api:latest", ["P4.unpinned"]),
        (f"{PREFIX}/auxip/api", ["P4.unpinned"]),
        ("harbor.auxip.internal:5000/mirror/api", ["P4.registry", "P4.unpinned"]),  # the port is not a tag
        ("docker.io/library/nginx:1.27", ["P4.registry"]),
        (f"{PREFIX}-evil/auxip/api:1.4.2", ["P4.registry"]),  # a prefix of the name is not the registry path
        ("nginx", ["P4.registry", "P4.unpinned"]),
    ],
)
def test_image_rules(image: str, expected: list[str]) -> None:
    assert [rule for rule, _ in image_problems(image, PREFIX)] == expected


def test_unpinned_image_outside_registry_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    pod = compliant_pod(config.registry_prefix)
    pod["spec"]["initContainers"] = [{**pod["spec"]["containers"][0], "name": "migrate", "image": "quay.io/x/y"}]
    pod["spec"]["containers"][0]["image"] = f"{config.registry_prefix}/auxip/api:latest"
    assert check_objects([*objects, pod], config.registry_prefix) == [
        Violation("Pod/auxip/api", "P4.registry", f"container 'migrate': image 'quay.io/x/y' is not pulled through "
                  f"{config.registry_prefix}/"),
        Violation("Pod/auxip/api", "P4.unpinned", "container 'api': image "
                  f"'{config.registry_prefix}/auxip/api:latest' has no digest and the latest tag"),
        Violation("Pod/auxip/api", "P4.unpinned", "container 'migrate': image 'quay.io/x/y' has no digest and no tag"),
    ]  # fmt: skip


# P5: RBAC --------------------------------------------------------------------------------------------------------


def test_wildcard_rbac_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "ingest", "namespace": "auxip-ingest"},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["*"]},
        ],
    }
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}],
    }
    assert validate_objects([role, cluster_role], config.kubernetes.version) == []
    assert [(v.object_id, v.rule, v.message) for v in check_objects([*objects, role, cluster_role], PREFIX)] == [
        ("ClusterRole/reader", "P5.wildcard", "rules[0].resources contains '*'"),
        ("Role/auxip-ingest/ingest", "P5.wildcard", "rules[1].verbs contains '*'"),
    ]


def test_service_account_bound_to_cluster_admin_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod

    def binding(kind: str, subject: dict[str, str]) -> dict[str, Any]:
        metadata = {"name": f"admin-{subject['name']}", **({"namespace": "auxip"} if kind == "RoleBinding" else {})}
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [subject],
        }

    bindings = [
        binding("ClusterRoleBinding", {"kind": "ServiceAccount", "name": "api", "namespace": "auxip"}),
        binding("RoleBinding", {"kind": "ServiceAccount", "name": "ingest"}),  # the binding's namespace applies
        # People (an IdP group) are not workloads: their access is reviewed elsewhere, not by this rule.
        binding("ClusterRoleBinding", {"kind": "Group", "name": "ops", "apiGroup": "rbac.authorization.k8s.io"}),
    ]
    assert validate_objects(bindings, config.kubernetes.version) == []
    assert [
        (v.object_id, v.rule, v.message.split(" is bound")[0]) for v in check_objects([*objects, *bindings], PREFIX)
    ] == [
        ("ClusterRoleBinding/admin-api", "P5.cluster-admin", "service account auxip/api"),
        # Bound cluster-wide, and a workload's: also P5.cluster-binding (any ClusterRole, see below).
        (
            "ClusterRoleBinding/admin-api",
            "P5.cluster-binding",
            "binds workload service account auxip/api cluster-wide; grant a Role and RoleBinding in its namespace "
            "instead",
        ),
        ("RoleBinding/auxip/admin-ingest", "P5.cluster-admin", "service account auxip/ingest"),
    ]


# P6: resources ---------------------------------------------------------------------------------------------------


def test_missing_limits_are_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    deployment = in_template("Deployment", compliant_pod(config.registry_prefix))
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    del resources["limits"]
    del resources["requests"]["cpu"]
    missing = "container 'api' has no requests.cpu, limits.cpu, limits.memory"
    assert check_objects([*objects, deployment], config.registry_prefix) == [
        Violation("Deployment/auxip/api", "P6.resources", missing)
    ]


def rbac(kind: str, name: str, namespace: str | None = None, **body: Any) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, **body}


def role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def test_cluster_role_binding_of_a_workload_account_is_rejected(
    prod: tuple[StackConfig, list[dict[str, Any]]],
) -> None:
    # Even to a harmless read-only ClusterRole: a workload gets a Role in its namespace. An operator in a system
    # namespace (cert-manager watches Certificates everywhere) may be bound cluster-wide; so may kube-system's.
    config, objects = prod
    reader = rbac("ClusterRole", "pod-reader", rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    account = {"kind": "ServiceAccount", "name": "sra", "namespace": "hosted-sra"}
    operator = {"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"}
    distribution = {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}
    ref = role_ref("ClusterRole", "pod-reader")
    bindings = [
        rbac("ClusterRoleBinding", "sra-reader", roleRef=ref, subjects=[account]),
        rbac("ClusterRoleBinding", "cm-reader", roleRef=ref, subjects=[operator]),
        rbac("ClusterRoleBinding", "dns", roleRef=ref, subjects=[distribution]),
        # The same grant as a RoleBinding in the workload's own namespace is what P5 asks for.
        rbac("RoleBinding", "sra-reader", "hosted-sra", roleRef=ref, subjects=[account]),
    ]
    assert validate_objects([reader, *bindings], config.kubernetes.version) == []
    assert rules(check_objects([*objects, reader, *bindings], config.registry_prefix)) == {
        ("ClusterRoleBinding/sra-reader", "P5.cluster-binding")
    }


def test_wildcard_api_groups_and_urls_are_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    role = rbac(
        "ClusterRole",
        "too-wide",
        rules=[
            {"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["get"]},  # secrets of every group, present or not
            {"nonResourceURLs": ["*"], "verbs": ["get"]},
        ],
    )
    assert validate_objects([role], config.kubernetes.version) == []
    assert [(v.rule, v.message) for v in check_objects([*objects, role], config.registry_prefix)] == [
        ("P5.wildcard", "rules[0].apiGroups contains '*'"),
        ("P5.wildcard", "rules[1].nonResourceURLs contains '*'"),
    ]


def test_stack_grants_no_api_access_to_its_workloads(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # The hosted applications never call the API: no Role, no binding, and no token mounted (the "or none" case).
    _, objects = prod
    assert [o for o in objects if o["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")] == []
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert accounts
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


# P1: system namespaces -------------------------------------------------------------------------------------------


def test_system_namespace_weakened_below_its_declared_level_is_rejected(
    prod: tuple[StackConfig, list[dict[str, Any]]],
) -> None:
    # cert-manager is declared restricted: relabelled privileged, even with a reason, it no longer matches the code.
    config, objects = prod
    ns = namespace(objects, "cert-manager")
    for mode in ("enforce", "audit", "warn"):
        ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] = "privileged"
    ns["metadata"]["annotations"] = {EXEMPTION_ANNOTATION: "the webhook would be easier to debug this way"}
    assert check_objects(objects, config.registry_prefix) == [
        Violation(
            "Namespace/cert-manager",
            "P1.system-level",
            "enforces 'privileged', but platform/system_namespaces.py declares 'restricted'",
        )
    ]


def test_privileged_pod_in_restricted_system_namespace_is_rejected(
    prod: tuple[StackConfig, list[dict[str, Any]]],
) -> None:
    # Being a system namespace exempts nothing by itself: kong is restricted, so a privileged pod there fails P3.
    config, objects = prod
    pod = privileged_pod(config.registry_prefix, "kong")
    pod["spec"]["priorityClassName"] = "auxip-platform-critical"
    violations = check_objects([*objects, pod], config.registry_prefix)
    assert rules(violations) == {("Pod/kong/fluent-bit", rule) for rule in PRIVILEGED_POD_IN_RESTRICTED}


# P7: quotas and limit ranges -------------------------------------------------------------------------------------


def without(objects: list[dict[str, Any]], kind: str, namespace_name: str) -> list[dict[str, Any]]:
    return [o for o in objects if (o["kind"], o["metadata"].get("namespace")) != (kind, namespace_name)]


@pytest.mark.parametrize("namespace_name", ["auxip", "hosted-mp", "kafka"])
def test_namespace_without_quota_is_rejected(
    prod: tuple[StackConfig, list[dict[str, Any]]], namespace_name: str
) -> None:
    # One of each origin: a baseline namespace, a hosted application's, a system namespace.
    config, objects = prod
    assert check_objects(without(objects, "ResourceQuota", namespace_name), config.registry_prefix) == [
        Violation(f"Namespace/{namespace_name}", "P7.quota", "no ResourceQuota without scopes bounds the namespace")
    ]


def test_namespace_without_limit_range_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    assert check_objects(without(objects, "LimitRange", "harbor"), config.registry_prefix) == [
        Violation("Namespace/harbor", "P7.limit-range", "no LimitRange gives containers default requests and limits")
    ]


def test_scoped_quota_alone_does_not_bound_the_namespace(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # calico-system has two quotas; the one scoped to system-node-critical pods bounds nothing else.
    config, objects = prod
    objects = [o for o in objects if object_id(o) != "ResourceQuota/calico-system/quota"]
    assert "ResourceQuota/calico-system/critical-pods" in {object_id(o) for o in objects}
    assert rules(check_objects(objects, config.registry_prefix)) == {("Namespace/calico-system", "P7.quota")}


def test_quota_and_limit_range_missing_keys_are_named(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    quota = next(o for o in objects if o["kind"] == "ResourceQuota" and o["metadata"]["namespace"] == "auxip")
    del quota["spec"]["hard"]["limits.memory"]
    del quota["spec"]["hard"]["pods"]
    limits = next(o for o in objects if o["kind"] == "LimitRange" and o["metadata"]["namespace"] == "auxip")
    del limits["spec"]["limits"][0]["defaultRequest"]
    del limits["spec"]["limits"][0]["default"]["memory"]
    assert validate_objects([quota, limits], config.kubernetes.version) == []
    assert [(v.rule, v.message) for v in check_objects(objects, config.registry_prefix)] == [
        ("P7.limit-range", "no LimitRange gives containers defaultRequest.cpu, defaultRequest.memory, default.memory"),
        ("P7.quota", "no ResourceQuota bounds limits.memory, pods"),
    ]


# P8: priority classes --------------------------------------------------------------------------------------------


def test_workload_without_priority_class_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["namespace"] == "hosted-mp")
    del deployment["spec"]["template"]["spec"]["priorityClassName"]
    assert check_objects(objects, config.registry_prefix) == [
        Violation(
            "Deployment/hosted-mp/mp", "P8.priority-class", "sets no priorityClassName (say which class it runs at)"
        )
    ]


def test_undeclared_priority_class_is_rejected(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    pod = compliant_pod(config.registry_prefix)
    pod["spec"]["priorityClassName"] = "very-important"
    job = in_template("Job", compliant_pod(config.registry_prefix, "auxip-ingest", "reprocess"))
    job["spec"]["template"]["spec"]["priorityClassName"] = "auxip-batch-low"  # declared: accepted
    assert check_objects([*objects, pod, job], config.registry_prefix) == [
        Violation("Pod/auxip/api", "P8.unknown-class", "PriorityClass 'very-important' is not declared by this stack")
    ]


def test_reserved_classes_only_in_system_namespaces(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # A workload at platform-critical would preempt the cluster services' peers; system-node-critical even more.
    config, objects = prod
    critical = compliant_pod(config.registry_prefix, "auxip", "greedy")
    critical["spec"]["priorityClassName"] = "auxip-platform-critical"
    node_critical = compliant_pod(config.registry_prefix, "auxip-ingest", "greedier")
    node_critical["spec"]["priorityClassName"] = "system-node-critical"
    in_system = compliant_pod(config.registry_prefix, "cert-manager", "webhook")
    in_system["spec"]["priorityClassName"] = "auxip-platform-critical"  # accepted
    violations = check_objects([*objects, critical, node_critical, in_system], config.registry_prefix)
    assert rules(violations) == {
        ("Pod/auxip/greedy", "P8.reserved-class"),
        ("Pod/auxip-ingest/greedier", "P8.reserved-class"),
        # And no quota in auxip-ingest admits the built-in class.
        ("Pod/auxip-ingest/greedier", "P8.unknown-class"),
    }


def test_built_in_class_needs_the_quota_that_admits_it(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    # calico-system declares system-node-critical and holds the scoped quota; tigera-operator too. Without the
    # quota, a cluster that limits the system-* classes to kube-system would refuse calico-node.
    config, objects = prod
    calico = compliant_pod(config.registry_prefix, "calico-system", "calico-node")
    calico["spec"]["priorityClassName"] = "system-node-critical"
    assert check_objects([*objects, calico], config.registry_prefix) == []
    objects = [o for o in objects if object_id(o) != "ResourceQuota/calico-system/critical-pods"]
    assert rules(check_objects([*objects, calico], config.registry_prefix)) == {
        ("Pod/calico-system/calico-node", "P8.unknown-class")
    }


def test_exactly_one_global_default_class(prod: tuple[StackConfig, list[dict[str, Any]]]) -> None:
    config, objects = prod
    classes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PriorityClass"}
    assert [name for name, pc in classes.items() if pc["globalDefault"]] == [WORKLOAD_DEFAULT]
    classes["auxip-batch-low"]["globalDefault"] = True
    assert check_objects(objects, config.registry_prefix) == [
        Violation(
            "PriorityClass/auxip-batch-low,auxip-workload-default",
            "P8.global-default",
            "2 global defaults among the declared classes",
        )
    ]
    classes["auxip-batch-low"]["globalDefault"] = classes[WORKLOAD_DEFAULT]["globalDefault"] = False
    (violation,) = check_objects(objects, config.registry_prefix)
    assert (violation.rule, violation.message) == ("P8.global-default", "0 global defaults among the declared classes")

"""The cluster tier: the real Pulumi engine runs the project's program against a real Kubernetes API server.

For each example stack (`Pulumi.dev.yaml`, `Pulumi.prod.yaml`), in this order, on the session's control plane
(`auxip_testing.kube_control_plane`): `pulumi up` of the platform and apps layers with the Helm releases installing
the real charts from `../shared/charts`; a second preview changes nothing; the live objects pass the same policy
checks as the offline render, the API server's admission and CRD validation act; a changed setting previews exactly
the expected operations and applies; `pulumi destroy` removes every namespace of ours.

The infra layer is off: its OpenStack provider cannot be built here (the Go module proxy refuses it), so it stays
under the SDK's mocks (tests/unit/test_infra_program.py). `apiServerOnly` is on: the cluster has no nodes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from auxip_platform.infra.stack_config import StackConfig, engine_config, load_stack_config
from auxip_platform.platform.policy import check_objects
from auxip_platform.platform.services.versions import accepted_violations
from auxip_platform.platform.system_namespaces import managed_system_namespaces
from auxip_testing.charts import charts_directory
from auxip_testing.kube_control_plane import ControlPlane
from auxip_testing.live_objects import live_objects, written_by_stack
from auxip_testing.pulumi_engine import EngineRun, EngineStack, open_stack
from auxip_testing.pulumi_mocks import PROJECT, REPO_ROOT, RegisteredResource, run_program, stack_config
from auxip_testing.render import normalise

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

STACKS = sorted(path.name.split(".")[1] for path in REPO_ROOT.glob("Pulumi.*.yaml"))
#: The namespace the changed-setting test adds.
ADDED_NAMESPACE = "auxip-sandbox"


def tier_overrides() -> dict[str, Any]:
    return {
        f"{PROJECT}:layers": {"infra": False},
        f"{PROJECT}:apiServerOnly": {"chartDirectory": str(charts_directory())},
    }


def changed_setting(stack: str) -> dict[str, Any]:
    """The keys the changed-setting test replaces: a namespace added, and one replica count raised."""
    config = stack_config(stack)
    kubernetes = copy.deepcopy(config[f"{PROJECT}:kubernetes"])
    kubernetes["namespaces"].append({"name": ADDED_NAMESPACE})
    changed: dict[str, Any] = {f"{PROJECT}:kubernetes": kubernetes}
    if config.get(f"{PROJECT}:apps", {}).get("hosted"):
        apps = copy.deepcopy(config[f"{PROJECT}:apps"])
        app = apps["hosted"][0]
        app["replicas"] += 1
        # Room in its quota for the extra pod (and its rolling-update surge): the config refuses it otherwise.
        app["quota"]["limits"] = {"cpu": "8", "memory": "16Gi"}
        changed[f"{PROJECT}:apps"] = apps
    else:
        services = copy.deepcopy(config[f"{PROJECT}:clusterServices"])
        services["kong"]["replicas"] += 1
        changed[f"{PROJECT}:clusterServices"] = services
    return changed


def validated(config: dict[str, Any]) -> StackConfig:
    return load_stack_config(*engine_config(config))


@dataclass
class Deployed:
    name: str
    engine: EngineStack
    plane: ControlPlane
    first_up: EngineRun
    destroyed: bool = False

    @property
    def config(self) -> StackConfig:
        return validated(self.engine.config)

    def our_namespaces(self) -> set[str]:
        return {ns.name for ns in self.config.kubernetes.namespaces} | {ns.name for ns in managed_system_namespaces()}


@pytest.fixture(scope="module", params=STACKS)
def deployed(
    request: pytest.FixtureRequest, kube_control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    name = request.param
    engine = open_stack(
        name, kube_control_plane.kubeconfig, tmp_path_factory.mktemp(f"pulumi-{name}"), tier_overrides()
    )
    deployment = Deployed(name, engine, kube_control_plane, engine.up())
    yield deployment
    if not deployment.destroyed:
        # A test failed before the destroy test: leave the control plane empty for the next stack.
        engine.destroy()


def _custom(resources: list[RegisteredResource]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.type, r.name): normalise(r.inputs) for r in resources if r.custom}


def _core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


# The first `pulumi up` -------------------------------------------------------------------------------------------


def test_up_creates_exactly_what_the_program_declares(deployed: Deployed) -> None:
    # The offline render (mocks) and the real engine agree resource by resource.
    declared = set(_custom(run_program(deployed.name, overrides={f"{PROJECT}:layers": {"infra": False}})))
    created = {(c.type, c.name) for c in deployed.first_up.changed() if c.op == "create"}
    providers = {item for item in created if item[0].startswith("pulumi:providers:")}
    assert created - providers == declared
    assert len(declared) > 50
    assert {c.op for c in deployed.first_up.changed()} == {"create"}


def test_a_second_preview_changes_nothing(deployed: Deployed) -> None:
    assert [str(c) for c in deployed.engine.preview().changed()] == []


# The live objects: the offline checks, run against the API server ----------------------------------------------


def test_live_namespaces_carry_pod_security_labels_and_default_deny(deployed: Deployed) -> None:
    api = deployed.plane.api_client()
    objects = live_objects(api)
    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    assert deployed.our_namespaces() <= set(namespaces)
    version = f"v{deployed.config.kubernetes.version}"
    for name in deployed.our_namespaces():
        labels = namespaces[name]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce-version"] == version
        assert labels["pod-security.kubernetes.io/enforce"] in ("restricted", "baseline", "privileged")
    ours = [o for o in objects if o["kind"] != "Namespace" and written_by_stack(o)]
    ours += [namespaces[name] for name in sorted(deployed.our_namespaces())]
    assert check_objects(ours, deployed.config.registry_prefix, accepted_violations()) == []


def test_live_service_accounts_of_the_program_mount_no_token(deployed: Deployed) -> None:
    accounts = [
        o
        for o in live_objects(deployed.plane.api_client(), [("v1", "ServiceAccount")])
        if written_by_stack(o) and "meta.helm.sh/release-name" not in (o["metadata"].get("annotations") or {})
    ]
    assert all(a.get("automountServiceAccountToken") is False for a in accounts), [
        a["metadata"]["name"] for a in accounts if a.get("automountServiceAccountToken") is not False
    ]


def test_pod_security_admission_refuses_a_privileged_pod_in_a_restricted_namespace(deployed: Deployed) -> None:
    core = _core(deployed.plane.api_client())
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged-probe"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod("auxip", pod, dry_run="All")
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:v' in json.loads(refused.value.body)["message"]
    # The CNI's namespace is exempt with a written reason (platform/system_namespaces.py): admitted there.
    admitted = core.create_namespaced_pod("calico-system", pod, dry_run="All")
    assert admitted.metadata.name == "privileged-probe"


def test_api_server_validates_custom_resources_against_the_chart_crds(deployed: Deployed) -> None:
    custom = client.CustomObjectsApi(deployed.plane.api_client())
    plugin = custom.get_cluster_custom_object(
        "configuration.konghq.com", "v1", "kongclusterplugins", "auxip-security-headers"
    )
    # A CEL rule of the CRD (x-kubernetes-validations), which the offline schema check does not evaluate.
    both = copy.deepcopy(plugin)
    both["configFrom"] = {"secretKeyRef": {"name": "x", "key": "y", "namespace": "kong"}}
    with pytest.raises(client.ApiException) as refused:
        custom.replace_cluster_custom_object(
            "configuration.konghq.com", "v1", "kongclusterplugins", "auxip-security-headers", both, dry_run="All"
        )
    assert refused.value.status == 422
    assert "Using both config and configFrom fields is not allowed." in refused.value.body
    # A wrong type in a structural schema.
    pool = custom.list_namespaced_custom_object("kafka.strimzi.io", "v1", "kafka", "kafkanodepools")["items"][0]
    pool["spec"]["replicas"] = "three"
    with pytest.raises(client.ApiException) as wrong_type:
        custom.replace_namespaced_custom_object(
            "kafka.strimzi.io", "v1", "kafka", "kafkanodepools", pool["metadata"]["name"], pool, dry_run="All"
        )
    assert wrong_type.value.status == 422
    assert "spec.replicas" in wrong_type.value.body


def test_live_auxip_workloads_and_its_kafka_resources(deployed: Deployed) -> None:
    api = deployed.plane.api_client()
    service = deployed.config.apps.auxip
    assert service is not None
    apps = client.AppsV1Api(api)
    live = apps.list_namespaced_deployment("auxip", label_selector="app.kubernetes.io/name=auxip").items
    assert {d.metadata.name: d.spec.replicas for d in live} == {
        f"auxip-{role}": config.replicas for role, config in service.roles.items()
    }
    assert apps.read_namespaced_deployment("clamd", "auxip").spec.replicas == service.scanner.replicas
    # The migration Job and the Deployments exist: nothing waited for pods (the tier has no nodes).
    job = client.BatchV1Api(api).read_namespaced_job("auxip-migrate-0-1-0", "auxip")
    assert job.spec.template.spec.containers[0].args == ["migrate", "--config", "/etc/auxip/auxip.yaml"]
    hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("auxip-api", "auxip")
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (
        service.roles.api.replicas,
        service.roles.api.max_replicas,
    )
    # The API server accepted the custom resources against the installed CRDs (Strimzi, cert-manager, Kong).
    custom = client.CustomObjectsApi(api)
    user = custom.get_namespaced_custom_object("kafka.strimzi.io", "v1", "auxip", "kafkausers", "auxip-kafka-client")
    assert user["spec"]["authentication"] == {"type": "tls"}
    assert [acl["resource"] for acl in user["spec"]["authorization"]["acls"]] == [
        {"type": "topic", "name": "auxip.", "patternType": "prefix"},
        {"type": "group", "name": "auxip.", "patternType": "prefix"},
    ]
    topics = custom.list_namespaced_custom_object("kafka.strimzi.io", "v1", "kafka", "kafkatopics")["items"]
    assert {t["spec"]["topicName"] for t in topics} == {"auxip.product.published", "auxip.product.quarantined"}
    plugins = custom.list_namespaced_custom_object("configuration.konghq.com", "v1", "auxip", "kongplugins")["items"]
    assert {p["plugin"] for p in plugins} == {"request-size-limiting", "rate-limiting"}
    certificate = custom.get_namespaced_custom_object("cert-manager.io", "v1", "auxip", "certificates", "auxip-api-tls")
    assert certificate["spec"]["issuerRef"]["name"] == "auxip-internal-ca"
    # And validates them: an ACL operation Strimzi does not know is refused.
    broken = copy.deepcopy(user)
    broken["spec"]["authorization"]["acls"][0]["operations"] = ["Everything"]
    with pytest.raises(client.ApiException) as refused:
        custom.replace_namespaced_custom_object(
            "kafka.strimzi.io", "v1", "auxip", "kafkausers", "auxip-kafka-client", broken, dry_run="All"
        )
    assert refused.value.status == 422


# A changed setting -----------------------------------------------------------------------------------------------


def _expected_changes(stack: str, changed: dict[str, Any]) -> set[tuple[str, str, str]]:
    """What the program itself changes between the two configs, from two runs under mocks."""
    base = {f"{PROJECT}:layers": {"infra": False}}
    before = _custom(run_program(stack, overrides=base))
    after = _custom(run_program(stack, overrides={**base, **changed}))
    return (
        {("create", *key) for key in after.keys() - before.keys()}
        | {("delete", *key) for key in before.keys() - after.keys()}
        | {("update", *key) for key in after.keys() & before.keys() if after[key] != before[key]}
    )


def test_a_changed_setting_previews_exactly_the_expected_operations_and_applies(deployed: Deployed) -> None:
    changed = changed_setting(deployed.name)
    expected = _expected_changes(deployed.name, changed)
    assert ("create", "kubernetes:core/v1:Namespace", ADDED_NAMESPACE) in expected
    assert any(op == "update" for op, _, _ in expected)
    engine = deployed.engine
    engine.set_config(stack_config(deployed.name, {**tier_overrides(), **changed}))
    preview = engine.preview()
    assert {(c.op, c.type, c.name) for c in preview.changed()} == expected, "\n".join(map(str, preview.changed()))
    applied = engine.up()
    assert {(c.op, c.type, c.name) for c in applied.changed()} == expected
    assert engine.preview().changed() == []
    core = _core(deployed.plane.api_client())
    labels = core.read_namespace(ADDED_NAMESPACE).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# Destroy ---------------------------------------------------------------------------------------------------------


def test_destroy_leaves_no_namespace_of_ours(deployed: Deployed) -> None:
    ours = deployed.our_namespaces() | {ADDED_NAMESPACE}
    run = deployed.engine.destroy()
    deployed.destroyed = True
    assert {c.op for c in run.changed()} == {"delete"}
    remaining = {ns.metadata.name for ns in _core(deployed.plane.api_client()).list_namespace().items}
    assert remaining & ours == set()
    assert {"default", "kube-system"} <= remaining
    leftovers = [o for o in live_objects(deployed.plane.api_client()) if written_by_stack(o)]
    assert [f"{o['kind']}/{o['metadata']['name']}" for o in leftovers] == []

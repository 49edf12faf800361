"""The upstream charts each stack installs, rendered with the values the program computes (`auxip_testing.charts`).

Which chart and version each release renders, how its objects are marked as Helm installs them, that no object has
two owners, and that every values key we pass is one the chart knows (Helm itself ignores unknown keys, unless the
chart ships a values schema).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from auxip_platform.infra.stack_config import load_stack_file
from auxip_platform.platform.services import calico, cert_manager, kafka, kong, postgres
from auxip_platform.platform.services.versions import CHARTS
from auxip_testing import charts
from auxip_testing.charts import (
    HOOK_ANNOTATION,
    RELEASE_NAME_ANNOTATION,
    RELEASE_NAMESPACE_ANNOTATION,
    ChartError,
    Release,
    RenderedRelease,
    chart_and_version,
    chart_keys,
    example_stacks,
    unknown_values,
)
from auxip_testing.pulumi_mocks import REPO_ROOT
from auxip_testing.render import StackRender, ownership_conflicts, render_stack

STACKS = example_stacks()
#: Release name → its pin in versions.CHARTS.
RELEASE_CHARTS = {
    "calico-crds": "calico-crds",
    "tigera-operator": "calico",
    "cert-manager": "cert-manager",
    "kong": "kong",
    "strimzi": "strimzi",
    "cnpg": "cloudnative-pg",
}
MANAGED_BY = "app.kubernetes.io/managed-by"


@pytest.fixture(scope="module", params=STACKS)
def rendered(request: pytest.FixtureRequest) -> StackRender:
    return render_stack(request.param)


def release(render: StackRender, name: str) -> RenderedRelease:
    (found,) = [r for r in render.releases if r.release.name == name]
    return found


def with_values(original: Release, change: dict[str, Any]) -> Release:
    """The release with `change` merged into its values (mappings key by key)."""

    def merged(base: Any, update: Any) -> Any:
        if isinstance(base, dict) and isinstance(update, dict):
            return {**base, **{key: merged(base.get(key), value) for key, value in update.items()}}
        return update

    return dataclasses.replace(original, values=merged(copy.deepcopy(original.values), change))


# Releases and their charts -----------------------------------------------------------------------------------------


def test_every_release_renders_its_pinned_chart(rendered: StackRender) -> None:
    found = {r.release.name: (r.release.chart, r.release.version) for r in rendered.releases}
    assert found == {name: (CHARTS[key].chart, CHARTS[key].version) for name, key in RELEASE_CHARTS.items()}
    for item in rendered.releases:
        assert item.release.archive.parent == charts.charts_directory()
        assert item.objects, f"{item.release.name} renders nothing"


def test_releases_render_with_exactly_the_values_the_code_computes(rendered: StackRender) -> None:
    # What crossed the Pulumi RPC boundary (integers as floats) is rendered as the values functions return it.
    config = load_stack_file(REPO_ROOT / f"Pulumi.{rendered.stack}.yaml")
    prefix = config.registry_prefix
    expected = {
        "calico-crds": {},
        "tigera-operator": calico.operator_values(prefix),
        "cert-manager": cert_manager.chart_values(prefix),
        "kong": kong.chart_values(config.cluster_services.kong, prefix),
        # The User Operator writes the AUXIP's KafkaUser Secret in the AUXIP namespace (apps.auxip is on).
        "strimzi": kafka.operator_values(prefix, config.apps.auxip_namespace if config.apps.auxip else None),
        "cnpg": postgres.operator_values(prefix),
    }
    assert {r.release.name: r.release.values for r in rendered.releases} == expected
    # Equality does not tell 10250 from 10250.0: the values file gets integers, as the values functions return them.
    assert type(release(rendered, "cert-manager").release.values["webhook"]["securePort"]) is int


def test_chart_objects_are_marked_as_helm_installs_them(rendered: StackRender) -> None:
    for item in rendered.releases:
        name, namespace = item.release.name, item.release.namespace
        for obj in item.objects:
            metadata = obj["metadata"]
            annotations, labels = metadata.get("annotations") or {}, metadata.get("labels") or {}
            if HOOK_ANNOTATION in annotations:
                assert RELEASE_NAME_ANNOTATION not in annotations  # hooks are created outside the release
                continue
            if obj["kind"] != "CustomResourceDefinition":
                assert (labels[MANAGED_BY], annotations[RELEASE_NAME_ANNOTATION]) == ("Helm", name), obj["kind"]
                assert annotations[RELEASE_NAMESPACE_ANNOTATION] == namespace
    # Templated CRDs belong to their release; those of a chart's crds/ directory are installed once and never upgraded
    # (Kong's and Strimzi's), so Helm does not mark them.
    owned = {
        r.release.name
        for r in rendered.releases
        for o in r.objects
        if o["kind"] == "CustomResourceDefinition" and RELEASE_NAME_ANNOTATION in o["metadata"].get("annotations", {})
    }
    assert owned == {"calico-crds", "cert-manager", "cnpg"}
    hooks = {
        (o["kind"], o["metadata"]["name"])
        for o in rendered.chart_objects
        if HOOK_ANNOTATION in o["metadata"].get("annotations", {})
    }
    startup_check = "cert-manager-startupapicheck"
    assert hooks == {
        ("Job", "tigera-operator-uninstall"),  # pre-delete: removes the Installation before the operator goes
        *(("Job", startup_check), ("ServiceAccount", startup_check)),  # post-install: waits for the webhook
        *(("Role", f"{startup_check}:create-cert"), ("RoleBinding", f"{startup_check}:create-cert")),
    }


def test_namespaced_chart_objects_land_in_their_release_namespace(rendered: StackRender) -> None:
    elsewhere = []
    for item in rendered.releases:
        for obj in item.objects:
            namespace = obj["metadata"].get("namespace")
            if obj["kind"] in charts.CLUSTER_SCOPED_KINDS:
                assert namespace is None, obj["metadata"]["name"]
            elif namespace != item.release.namespace:
                elsewhere.append((item.release.name, obj["kind"], namespace, obj["metadata"]["name"]))
    # But Strimzi's RoleBindings in the namespace whose KafkaUsers it watches (`watchNamespaces`: the AUXIP's), which
    # let its operator delegate the User Operator's rights there.
    assert sorted(elsewhere) == [
        ("strimzi", "RoleBinding", "auxip", name)
        for name in ("strimzi-cluster-operator", "strimzi-cluster-operator-entity-operator-delegation",
                     "strimzi-cluster-operator-watched")
    ]  # fmt: skip


def manifest(api_version: str, kind: str, name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **metadata}}


def crd(name: str, kind: str, scope: str) -> dict[str, Any]:
    spec = {"group": "example.org", "names": {"kind": kind}, "scope": scope, "versions": []}
    return {**manifest("apiextensions.k8s.io/v1", "CustomResourceDefinition", name), "spec": spec}


def test_helm_metadata_and_namespaces_are_added_as_at_install() -> None:
    example = Release("web", "apps", "web", "1.0.0", {})
    documents = [
        ("web/crds/things.yaml", crd("things.example.org", "Thing", "Namespaced")),
        ("web/templates/crd.yaml", crd("globals.example.org", "Global", "Cluster")),
        ("web/templates/deploy.yaml", manifest("apps/v1", "Deployment", "web")),
        ("web/templates/role.yaml", manifest("rbac.authorization.k8s.io/v1", "ClusterRole", "r")),
        ("web/templates/thing.yaml", manifest("example.org/v1", "Thing", "t", namespace="other")),
        ("web/templates/global.yaml", manifest("example.org/v1", "Global", "g")),
        ("web/templates/hook.yaml", manifest("batch/v1", "Job", "h", annotations={HOOK_ANNOTATION: "post-install"})),
        ("web/charts/db/crds/dbs.yaml", crd("dbs.example.org", "Db", "Namespaced")),
    ]
    installed = charts.as_installed(example, copy.deepcopy(documents), charts.custom_scopes([o for _, o in documents]))
    summary = [
        (o["kind"], o["metadata"].get("namespace"), o["metadata"].get("annotations", {}).get(RELEASE_NAME_ANNOTATION))
        for o in installed
    ]
    assert summary == [
        ("CustomResourceDefinition", None, None),  # crds/: installed before the release, not part of it
        ("CustomResourceDefinition", None, "web"),
        ("Deployment", "apps", "web"),
        ("ClusterRole", None, "web"),
        ("Thing", "other", "web"),  # a namespace the chart names is kept
        ("Global", None, "web"),
        ("Job", "apps", None),  # a hook
        ("CustomResourceDefinition", None, None),
    ]
    assert installed[2]["metadata"]["labels"] == {MANAGED_BY: "Helm"}
    stray = [("web/templates/x.yaml", manifest("monitoring.coreos.com/v1", "PodMonitor", "x"))]
    with pytest.raises(ChartError, match=r"PodMonitor .* no chart of the stack installs its CRD"):
        charts.as_installed(example, stray, {})


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"chart": "cert-manager", "version": "v1.21.1"}, ("cert-manager", "v1.21.1")),
        ({"chart": "oci://harbor.auxip.internal/charts/kong", "version": "3.4.1"}, ("kong", "3.4.1")),
        ({"chart": "/srv/charts/crd.projectcalico.org.v1-v3.32.1.tgz"}, ("crd.projectcalico.org.v1", "v3.32.1")),
        ({"chart": "/srv/charts/strimzi-kafka-operator-1.2.0-rc.1.tgz"}, ("strimzi-kafka-operator", "1.2.0-rc.1")),
    ],
)
def test_chart_name_and_version_from_every_kind_of_source(inputs: dict[str, str], expected: tuple[str, str]) -> None:
    assert chart_and_version(inputs) == expected


def test_a_missing_chart_or_charts_directory_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ChartError, match=r"kong-9\.9\.9\.tgz is not in .*charts"):
        _ = Release("kong", "kong", "kong", "9.9.9", {}).archive
    monkeypatch.setenv(charts.SHARED_DIR_ENV, str(tmp_path))
    with pytest.raises(ChartError, match=f"{tmp_path / 'charts'} does not exist.*AUXIP_SHARED_DIR"):
        charts.charts_directory()
    (tmp_path / "charts").mkdir()
    assert charts.charts_directory() == tmp_path / "charts"


# Two owners --------------------------------------------------------------------------------------------------------


def test_no_object_is_created_by_two_owners(rendered: StackRender) -> None:
    assert ownership_conflicts(rendered) == []


def test_a_chart_object_we_also_create_is_reported(rendered: StackRender) -> None:
    # Kong's chart makes its own IngressClass unless told not to (ours exists before the release, Kong.ingress_class).
    kong = release(rendered, "kong").release
    variant = with_values(kong, {"ingressController": {"createIngressClass": True}})
    (redone,) = charts.render_releases([variant], rendered.kubernetes_version)
    others = [r for r in rendered.releases if r.release.name != "kong"]
    conflicts = ownership_conflicts(dataclasses.replace(rendered, releases=[*others, redone]))
    assert [(c.object_id, c.error) for c in conflicts] == [("IngressClass/kong", "created by pulumi and kong")]


# Values keys -------------------------------------------------------------------------------------------------------


def test_release_values_have_no_unknown_keys(rendered: StackRender) -> None:
    assert {r.release.name: unknown_values(r.release) for r in rendered.releases} == {
        name: [] for name in RELEASE_CHARTS
    }


@pytest.mark.parametrize(
    ("name", "change", "unknown"),
    [
        # Charts without a values schema, where Helm would silently ignore the key.
        (
            "kong",
            {"ingressController": {"admissionWebhook": {"prot": 8080}}},
            "ingressController.admissionWebhook.prot",
        ),
        ("strimzi", {"podSecurityContxt": {"runAsUser": 10001}}, "podSecurityContxt"),
        ("tigera-operator", {"tigeraOperator": {"imagee": "x"}}, "tigeraOperator.imagee"),
        # One with a schema: reported here too, with the same path.
        ("cnpg", {"config": {"dta": {"X": "y"}}}, "config.dta"),
        ("cert-manager", {"webhook": {"replicaCont": 2}}, "webhook.replicaCont"),
    ],
)
def test_a_misspelt_values_key_is_reported_with_its_path(
    rendered: StackRender, name: str, change: dict[str, Any], unknown: str
) -> None:
    assert unknown_values(with_values(release(rendered, name).release, change)) == [unknown]


def test_keys_below_kubernetes_typed_and_free_form_values_are_accepted(rendered: StackRender) -> None:
    strimzi = release(rendered, "strimzi").release
    free = {
        "resources": {"limits": {"ephemeral-storage": "1Gi"}},  # a Kubernetes structure, passed as it is
        "extraEnvs": [{"name": "JAVA_OPTS", "value": "-Xmx256m"}],  # a list
        "image": {"imagePullPolicy": "Always", "imagePullSecrets": [{"name": "x"}]},  # read by the templates only
    }
    assert unknown_values(with_values(strimzi, free)) == []
    # An empty map by default takes any key; a chart without that map does not (Strimzi has no podLabels).
    assert unknown_values(with_values(release(rendered, "tigera-operator").release, {"podLabels": {"a": "b"}})) == []
    assert unknown_values(with_values(strimzi, {"podLabels": {"a": "b"}})) == ["podLabels"]
    keys = chart_keys(release(rendered, "kong").release.archive)
    # Subcharts' values live under their name (Kong bundles bitnami's postgresql, itself with `common`).
    assert {("postgresql", "auth", "database"), ("postgresql", "common")} <= keys.known


def test_helm_refuses_unknown_keys_where_the_chart_has_a_schema(rendered: StackRender) -> None:
    misspelt = with_values(release(rendered, "cert-manager").release, {"webhook": {"replicaCont": 2}})
    with pytest.raises(ChartError, match="replicaCont"):
        charts.helm_template(misspelt, rendered.kubernetes_version)


def test_the_render_takes_the_branches_of_a_real_cluster() -> None:
    # Charts test kinds, not just group/versions (Kong's IngressClass, Helm's default set has none of these).
    served = charts.served_api_versions("1.31")
    assert {
        "networking.k8s.io/v1/IngressClass",
        "apps/v1/Deployment",
        "v1/Pod",
        "policy/v1/PodDisruptionBudget",
    } <= set(served)
    assert not [v for v in served if "beta" in v or "alpha" in v or v.endswith("List")]

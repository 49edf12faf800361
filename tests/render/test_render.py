"""Every Kubernetes object each example stack would create, ours and those of its Helm releases (the upstream charts
rendered with our values, `auxip_testing.charts`), passes strict schema validation; broken ones fail. Custom
resources are validated against the CRDs those charts install. The charts themselves: tests/render/test_charts.py.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from auxip_platform.platform.services.versions import CHARTS
from auxip_testing import crd_schemas
from auxip_testing.charts import example_stacks
from auxip_testing.crd_schemas import CrdSchema, custom_groups, custom_resource_schemas, strict
from auxip_testing.render import StackRender, main, normalise, render_stack, validate_objects, write_objects

STACKS = example_stacks()


@pytest.fixture(scope="module", params=STACKS)
def rendered(request: pytest.FixtureRequest) -> StackRender:
    return render_stack(request.param)


def test_stack_objects_pass_strict_schema_validation(rendered: StackRender) -> None:
    assert len(rendered.objects) >= 9  # three namespaces with two policies each at the very least
    assert validate_objects(rendered.all_objects, rendered.kubernetes_version) == []
    # Custom resources are among them (checked against their CRDs, not skipped).
    assert {"Kafka", "KafkaNodePool", "ClusterIssuer", "Installation"} <= {o["kind"] for o in rendered.objects}
    # So are the releases' objects: the operators, their RBAC, webhooks and CRDs.
    chart_kinds = {o["kind"] for o in rendered.chart_objects}
    assert {"Deployment", "ClusterRole", "ValidatingWebhookConfiguration", "CustomResourceDefinition"} <= chart_kinds


def test_broken_chart_object_is_rejected(rendered: StackRender) -> None:
    deployment = copy.deepcopy(next(o for o in rendered.chart_objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    crd = copy.deepcopy(next(o for o in rendered.chart_objects if o["kind"] == "CustomResourceDefinition"))
    crd["spec"]["scope"] = 7
    problems = validate_objects([deployment, crd], rendered.kubernetes_version)
    assert [p.object_id.split("/")[0] for p in problems] == ["Deployment", "CustomResourceDefinition"]
    assert "securityContxt" in problems[0].error


def test_unknown_field_is_rejected(rendered: StackRender) -> None:
    version, objects = rendered.kubernetes_version, rendered.objects
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "NetworkPolicy"))
    broken["spec"]["podSelectr"] = {}
    problems = validate_objects([broken], version)
    assert len(problems) == 1
    assert "podSelectr" in problems[0].error


def test_wrong_type_and_unknown_kind_are_rejected(rendered: StackRender) -> None:
    version, objects = rendered.kubernetes_version, rendered.objects
    wrong_type = copy.deepcopy(next(o for o in objects if o["kind"] == "NetworkPolicy" and o["spec"].get("egress")))
    wrong_type["spec"]["egress"][0]["ports"][0]["port"] = [53]
    unknown_kind = {"apiVersion": "v1", "kind": "Namespaec", "metadata": {"name": "x"}}
    problems = validate_objects([wrong_type, unknown_kind], version)
    assert [p.object_id.split("/")[0] for p in problems] == ["NetworkPolicy", "Namespaec"]


def test_floats_from_the_rpc_boundary_become_integers() -> None:
    assert normalise({"port": 53.0, "ratio": 0.5, "items": [1.0, "a"]}) == {"port": 53, "ratio": 0.5, "items": [1, "a"]}


def test_write_objects_refuses_duplicates(tmp_path: Path) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    with pytest.raises(ValueError, match="declared twice"):
        write_objects([obj, obj], tmp_path / "out")


def test_make_render_cli_writes_valid_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `make render` runs this main(); here in the test process, where the stack's render is already cached.
    rendered = render_stack("dev")
    monkeypatch.setattr(sys, "argv", ["render", rendered.stack, "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_status:
        main()
    assert exit_status.value.code == 0, capsys.readouterr().err
    out = tmp_path / rendered.stack
    assert f"{len(rendered.objects)} objects of ours and {len(rendered.chart_objects)}" in capsys.readouterr().out
    assert "namespace_auxip.yaml" in [f.name for f in out.glob("*.yaml")]
    first = yaml.safe_load((out / "networkpolicy_auxip_allow-dns.yaml").read_text())
    assert first["spec"]["egress"][0]["ports"][0]["port"] == 53
    assert isinstance(first["spec"]["egress"][0]["ports"][0]["port"], int)
    # Each release's objects in a folder of its own, as Helm installs them.
    assert sorted(p.name for p in (out / "helm").iterdir()) == sorted(r.release.name for r in rendered.releases)
    written = list((out / "helm").rglob("*.yaml"))
    assert len(written) == len(rendered.chart_objects)
    operator = yaml.safe_load((out / "helm" / "cert-manager" / "deployment_cert-manager_cert-manager.yaml").read_text())
    assert operator["metadata"]["annotations"]["meta.helm.sh/release-name"] == "cert-manager"


# Custom resources: validated against the upstream CRDs of the pinned charts (auxip_testing.crd_schemas) ----------


def package(key: str) -> str:
    """The packaged chart (without `.tgz`) of a pin of versions.CHARTS: where its CRD schemas come from."""
    return f"{CHARTS[key].chart}-{CHARTS[key].version}"


#: Every custom resource kind the example stacks render, and the chart whose CRD it is validated against.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "ClusterIssuer"): package("cert-manager"),
    ("cert-manager.io/v1", "Certificate"): package("cert-manager"),
    ("configuration.konghq.com/v1", "KongClusterPlugin"): package("kong"),
    ("configuration.konghq.com/v1", "KongPlugin"): package("kong"),
    ("kafka.strimzi.io/v1", "Kafka"): package("strimzi"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"): package("strimzi"),
    ("kafka.strimzi.io/v1", "KafkaTopic"): package("strimzi"),
    ("kafka.strimzi.io/v1", "KafkaUser"): package("strimzi"),
    ("postgresql.cnpg.io/v1", "Cluster"): package("cloudnative-pg"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): package("cloudnative-pg"),
    ("operator.tigera.io/v1", "Installation"): package("calico-crds"),
}


@pytest.fixture(scope="module")
def prod_objects() -> list[dict[str, Any]]:
    return render_stack("prod").objects


def test_every_custom_resource_kind_has_its_upstream_schema(prod_objects: list[dict[str, Any]]) -> None:
    rendered = {(o["apiVersion"], o["kind"]) for o in prod_objects if o["apiVersion"].split("/")[0] in custom_groups()}
    assert rendered == set(CUSTOM_KINDS)
    schemas = custom_resource_schemas()
    assert {key: schemas[key].source for key in CUSTOM_KINDS} == CUSTOM_KINDS


def test_crd_schemas_are_those_the_pinned_charts_install() -> None:
    # Every schema comes from a chart at the version versions.CHARTS pins (the one installed), nothing else.
    sources = {schema.source for schema in custom_resource_schemas().values()}
    assert sources == {package(key) for key in ("calico-crds", "cert-manager", "kong", "strimzi", "cloudnative-pg")}
    # And each stack installs exactly these CRDs through its releases: none is validated against a CRD it lacks.
    for stack in STACKS:
        crds = [o for o in render_stack(stack).chart_objects if o["kind"] == "CustomResourceDefinition"]
        kinds = {
            (f"{c['spec']['group']}/{v['name']}", c["spec"]["names"]["kind"])
            for c in crds
            for v in c["spec"]["versions"]
            if v["served"]
        }
        assert kinds == set(custom_resource_schemas()), stack


def test_two_charts_installing_different_schemas_for_one_kind_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    crd = next(o for o in render_stack("prod").chart_objects if o["metadata"]["name"] == "kafkas.kafka.strimzi.io")
    changed = copy.deepcopy(crd)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["type"] = "string"
    monkeypatch.setattr(crd_schemas, "chart_crds", lambda: iter([("a-1.0.0", crd), ("b-1.0.0", changed)]))
    with pytest.raises(ValueError, match=r"Kafka \(kafka.strimzi.io/v\w+\): a-1.0.0 and b-1.0.0 differ"):
        crd_schemas.custom_resource_schemas.__wrapped__()
    assert isinstance(crd_schemas.custom_resource_schemas()[("kafka.strimzi.io/v1", "Kafka")], CrdSchema)


def _typo(obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A copy with one misspelt field where it would matter (inside spec, or at the top for Kong's plugins)."""
    broken = copy.deepcopy(obj)
    if "spec" in broken:
        field = next(iter(broken["spec"]))
        broken["spec"][field + "s"] = broken["spec"].pop(field)
        return broken, field + "s"
    broken["plugn"] = broken.pop("plugin")
    return broken, "plugn"


@pytest.mark.parametrize("kind", sorted(kind for _, kind in CUSTOM_KINDS))
def test_a_typo_in_a_custom_resource_is_rejected(prod_objects: list[dict[str, Any]], kind: str) -> None:
    obj = next(o for o in prod_objects if o["kind"] == kind)
    assert validate_objects([obj], "1.31") == []
    broken, field = _typo(obj)
    problems = validate_objects([broken], "1.31")
    assert problems, f"{kind}: a misspelt {field!r} was accepted"
    assert any(f"'{field}' was unexpected" in p.error for p in problems)


def test_wrong_types_scope_and_metadata_of_custom_resources_are_rejected(prod_objects: list[dict[str, Any]]) -> None:
    kafka = copy.deepcopy(next(o for o in prod_objects if o["kind"] == "Kafka"))
    kafka["spec"]["kafka"]["listeners"][0]["port"] = "9093"
    cluster = copy.deepcopy(next(o for o in prod_objects if o["kind"] == "Cluster"))
    cluster["spec"]["backup"]["barmanObjectStore"]["s3Credentials"]["accessKeyId"] = "AKIA-plaintext"
    issuer = copy.deepcopy(next(o for o in prod_objects if o["metadata"]["name"] == "auxip-selfsigned-root"))
    issuer["metadata"]["namespace"] = "cert-manager"  # cluster-scoped
    pool = copy.deepcopy(next(o for o in prod_objects if o["metadata"]["name"] == "auxip-controller"))
    pool["metadata"]["labls"] = {}
    unknown = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaBroker", "metadata": {"name": "x", "namespace": "k"}}
    problems = {p.object_id: p.error for p in validate_objects([kafka, cluster, issuer, pool, unknown], "1.31")}
    assert problems == {
        "Kafka/kafka/auxip": "spec.kafka.listeners.0.port: '9093' is not of type 'integer'",
        "Cluster/auxip-catalog/auxip-catalog": (
            "spec.backup.barmanObjectStore.s3Credentials.accessKeyId: 'AKIA-plaintext' is not of type 'object'"
        ),
        "ClusterIssuer/cert-manager/auxip-selfsigned-root": "metadata.namespace: ClusterIssuer is cluster-scoped",
        "KafkaNodePool/kafka/auxip-controller": (
            "metadata: Additional properties are not allowed ('labls' was unexpected)"
        ),
        "KafkaBroker/k/x": "no CRD schema for kind KafkaBroker with api version kafka.strimzi.io/v1",
    }


def test_strict_schemas_keep_fields_the_crd_leaves_open() -> None:
    schema = strict(
        {
            "type": "object",
            "properties": {
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "empty": {"type": "object"},
                "note": {"type": "string", "nullable": True},
            },
        }
    )
    validator = jsonschema.Draft4Validator(schema)
    assert validator.is_valid({"config": {"any.key": 1}, "labels": {"a": "b"}, "note": None})
    assert not validator.is_valid({"confg": {}})
    assert not validator.is_valid({"empty": {"pruned": True}})  # the API server would drop it silently

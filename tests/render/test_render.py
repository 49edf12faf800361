"""Every Kubernetes object each example stack would create passes strict schema validation; broken ones fail."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from auxip_platform.infra.stack_config import load_stack_file
from auxip_platform.platform.services import versions
from auxip_testing.crd_schemas import GO_MODULES, STRIMZI_VERSION, custom_groups, custom_resource_schemas, strict
from auxip_testing.pulumi_mocks import REPO_ROOT, run_program
from auxip_testing.render import kubernetes_objects, normalise, validate_objects, write_objects

STACKS = sorted(path.name.split(".")[1] for path in REPO_ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module", params=STACKS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    version = load_stack_file(REPO_ROOT / f"Pulumi.{request.param}.yaml").kubernetes.version
    return version, kubernetes_objects(run_program(request.param))


def test_stack_objects_pass_strict_schema_validation(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    version, objects = rendered
    assert len(objects) >= 9  # three namespaces with two policies each at the very least
    assert validate_objects(objects, version) == []
    # Custom resources are among them (checked against their CRDs, not skipped).
    assert {"Kafka", "KafkaNodePool", "ClusterIssuer", "Installation"} <= {o["kind"] for o in objects}


def test_unknown_field_is_rejected(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    version, objects = rendered
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "NetworkPolicy"))
    broken["spec"]["podSelectr"] = {}
    problems = validate_objects([broken], version)
    assert len(problems) == 1
    assert "podSelectr" in problems[0].error


def test_wrong_type_and_unknown_kind_are_rejected(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    version, objects = rendered
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


def test_make_render_cli_writes_valid_yaml(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "auxip_testing.render", "dev", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "dev").glob("*.yaml"))
    assert "namespace_auxip.yaml" in [f.name for f in files]
    first = yaml.safe_load((tmp_path / "dev" / "networkpolicy_auxip_allow-dns.yaml").read_text())
    assert first["spec"]["egress"][0]["ports"][0]["port"] == 53
    assert isinstance(first["spec"]["egress"][0]["ports"][0]["port"], int)


# Custom resources: validated against the upstream CRDs of the pinned charts (auxip_testing.crd_schemas) ----------

#: Every custom resource kind the example stacks render, and where its schema comes from.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "ClusterIssuer"): "crds-cert-manager-v1.21.2",
    ("cert-manager.io/v1", "Certificate"): "crds-cert-manager-v1.21.2",
    ("configuration.konghq.com/v1", "KongClusterPlugin"): "crds-kong-v1.1.0",
    ("kafka.strimzi.io/v1", "Kafka"): "crds-strimzi-1.2.0",
    ("kafka.strimzi.io/v1", "KafkaNodePool"): "crds-strimzi-1.2.0",
    ("kafka.strimzi.io/v1", "KafkaTopic"): "crds-strimzi-1.2.0",
    ("kafka.strimzi.io/v1", "KafkaUser"): "crds-strimzi-1.2.0",
    ("postgresql.cnpg.io/v1", "Cluster"): "crds-cloudnative-pg-v1.25.1",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "crds-cloudnative-pg-v1.25.1",
    ("operator.tigera.io/v1", "Installation"): "hand-written",
}


@pytest.fixture(scope="module")
def prod_objects() -> list[dict[str, Any]]:
    return kubernetes_objects(run_program("prod"))


def test_every_custom_resource_kind_has_its_upstream_schema(prod_objects: list[dict[str, Any]]) -> None:
    rendered = {(o["apiVersion"], o["kind"]) for o in prod_objects if o["apiVersion"].split("/")[0] in custom_groups()}
    assert rendered == set(CUSTOM_KINDS)
    schemas = custom_resource_schemas()
    assert {key: schemas[key].source for key in CUSTOM_KINDS} == CUSTOM_KINDS


def test_crd_sources_are_the_versions_of_the_installed_charts() -> None:
    # The schemas must describe what the charts install: same versions as platform/services/versions.py.
    assert {m.key: m.version for m in GO_MODULES} == {
        "cert-manager": versions.CERT_MANAGER_VERSION,
        "cloudnative-pg": f"v{versions.CNPG_VERSION}",
        "kong": "v1.1.0",  # the kubernetes-configuration release KIC 3.4 takes its CRDs from
    }
    assert (STRIMZI_VERSION, versions.CHARTS["strimzi"].version) == (versions.STRIMZI_VERSION,) * 2


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

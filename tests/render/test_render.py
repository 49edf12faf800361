"""Every Kubernetes object each example stack would create passes strict schema validation; broken ones fail."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_platform.infra.stack_config import load_stack_file
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

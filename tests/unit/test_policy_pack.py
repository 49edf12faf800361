"""The Pulumi policy pack serves exactly the shared policy functions (it cannot be run without the CLI here)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from auxip_platform.infra.policies import POLICIES
from auxip_testing.pulumi_mocks import REPO_ROOT

pulumi_policy = pytest.importorskip("pulumi_policy", reason="pulumi-policy is not installed in this environment")

PACK_DIR = REPO_ROOT / "infra" / "policy"
WORLD_SSH = {
    "direction": "ingress",
    "protocol": "tcp",
    "portRangeMin": 22,
    "portRangeMax": 22,
    "remoteIpPrefix": "0.0.0.0/0",
    "description": "bastion: ssh",
}


def run_pack(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Execute the pack's __main__ with PolicyPack captured instead of serving gRPC."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: captured.update(kwargs))
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    return captured


def test_pack_serves_one_mandatory_policy_per_shared_function(monkeypatch: pytest.MonkeyPatch) -> None:
    pack = run_pack(monkeypatch)
    assert pack["name"] == "auxip-infra"
    assert [p.name for p in pack["policies"]] == [p.name for p in POLICIES]
    assert {p.enforcement_level for p in pack["policies"]} == {pulumi_policy.EnforcementLevel.MANDATORY}


def test_validators_report_what_the_shared_functions_find(monkeypatch: pytest.MonkeyPatch) -> None:
    policies = {p.name: p for p in run_pack(monkeypatch)["policies"]}
    reports: list[tuple[str, str]] = []
    args = SimpleNamespace(resource_type="openstack:networking/secGroupRule:SecGroupRule", props=WORLD_SSH)
    for name, policy in policies.items():
        policy.validate(args, lambda message, urn=None, name=name: reports.append((name, message)))
    assert reports == [
        ("no-public-ssh", "bastion group opens SSH (22) to the world"),
        ("no-world-open-ports", "bastion group opens tcp 22-22 to the world"),
    ]
    clean = SimpleNamespace(resource_type=args.resource_type, props={**WORLD_SSH, "remoteIpPrefix": "192.0.2.0/24"})
    for name, policy in policies.items():
        policy.validate(clean, lambda message, urn=None, name=name: reports.append((name, message)))
    assert len(reports) == 2


def test_pack_manifest_uses_the_project_virtualenv() -> None:
    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert (PACK_DIR / manifest["runtime"]["options"]["virtualenv"]).resolve() == (REPO_ROOT / ".venv").resolve()
    assert Path(PACK_DIR / "__main__.py").read_text().count("PolicyPack(") == 1

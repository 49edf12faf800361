"""`molecule test` of every role that has a scenario passes end to end on the podman driver, idempotence included.

Roles are discovered from `ansible/roles/*/molecule/default/molecule.yml`, so a new role is tested as soon as it has
a scenario; each scenario's own verify tests say what the role must achieve.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from auxip_testing.hosts import ANSIBLE_DIR, VENV_BIN

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

SCENARIOS = sorted(ANSIBLE_DIR.glob("roles/*/molecule/default/molecule.yml"))
STEPS = ("create", "converge", "idempotence", "verify", "destroy")


def container_names(scenario: Path, suffix: str) -> list[str]:
    platforms = yaml.safe_load(scenario.read_text())["platforms"]
    return [p["name"].replace("${AUXIP_MOLECULE_SUFFIX:-local}", suffix) for p in platforms]


def test_every_role_has_a_scenario() -> None:
    roles = {path.name for path in (ANSIBLE_DIR / "roles").iterdir() if path.is_dir()}
    with_scenario = {scenario.parents[2].name for scenario in SCENARIOS}
    assert roles == with_scenario, f"roles without a molecule scenario: {sorted(roles - with_scenario)}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda path: path.parents[2].name)
def test_molecule_test(scenario: Path, ansible_env: dict[str, str], tmp_path: Path) -> None:
    suffix = str(os.getpid())
    env = {
        **ansible_env,
        # Unique container names, so a run left behind by another session cannot clash with this one.
        "AUXIP_MOLECULE_SUFFIX": suffix,
        # Molecule keys its state directory by the role directory's name alone: two checkouts testing the same role
        # at once would share (and destroy) each other's inventory. One directory per run instead.
        "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    }
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(VENV_BIN / "molecule"), "test"],
            cwd=scenario.parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    finally:
        # molecule destroys its instances even on failure; this covers a timeout or a crash of molecule itself.
        subprocess.run(
            ["podman", "rm", "--force", "--ignore", "--time", "0", *container_names(scenario, suffix)],
            capture_output=True,
            check=False,
        )
    output = result.stdout + result.stderr
    print(f"molecule test of {scenario.parents[2].name} took {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, output[-8000:]
    for step in STEPS:
        assert re.search(rf"\b{step}\b\W+Executed: Successful", output), f"step {step} did not pass:\n{output[-8000:]}"
    assert re.search(r"\d+ passed", output), "the testinfra verifier ran no test"
    assert not re.search(r"\d+ (failed|error)", output), output[-8000:]

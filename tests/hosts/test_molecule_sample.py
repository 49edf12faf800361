"""`molecule test` of the sample motd role passes end to end on the podman driver, idempotence included."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from auxip_testing.hosts import ANSIBLE_DIR, VENV_BIN

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

ROLE_DIR = ANSIBLE_DIR / "roles" / "motd"


def test_molecule_test_motd_role(ansible_env: dict[str, str]) -> None:
    suffix = f"{os.getpid()}"
    env = {
        **ansible_env,
        # Unique container name, so a run left behind by another session cannot clash with this one.
        "AUXIP_MOLECULE_SUFFIX": suffix,
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    }
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(VENV_BIN / "molecule"), "test"],
            cwd=ROLE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        # molecule destroys its instance even on failure; this covers a timeout or a crash of molecule itself.
        subprocess.run(
            ["podman", "rm", "--force", "--ignore", "--time", "0", f"auxip-motd-{suffix}"],
            capture_output=True,
            check=False,
        )
    output = result.stdout + result.stderr
    print(f"molecule test took {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, output[-8000:]
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert re.search(rf"\b{step}\b\W+Executed: Successful", output), f"step {step} did not pass:\n{output[-8000:]}"
    assert re.search(r"\d+ passed", output), "the testinfra verifier ran no test"

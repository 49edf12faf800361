"""Static checks are part of the suite, so `make test` fails on lint, format, typing, YAML, Ansible or shell issues."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auxip_testing.pulumi_mocks import REPO_ROOT

BIN = Path(sys.executable).parent


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}\n{result.stderr}"


def tracked_files(*patterns: str) -> list[str]:
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns])
    return [name for name in listed.stdout.splitlines() if (REPO_ROOT / name).exists()]


def test_ruff_lint() -> None:
    assert_clean(run([str(BIN / "ruff"), "check", "."]))


def test_ruff_format() -> None:
    assert_clean(run([str(BIN / "ruff"), "format", "--check", "."]))


def test_mypy_on_apps() -> None:
    assert_clean(run([str(BIN / "mypy")]))


def test_yamllint() -> None:
    assert_clean(run([str(BIN / "yamllint"), "--strict", "."]))


def test_ansible_lint() -> None:
    from auxip_testing.collections_cache import collections_path

    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections_path()), "PATH": f"{BIN}:{os.environ['PATH']}"}
    assert_clean(run([str(BIN / "ansible-lint"), "--offline", "ansible/"], env=env))


def test_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: apt-get install shellcheck (make test installs it)")
    scripts = [".ci/run", ".ci/install-system-packages", *tracked_files("*.sh")]
    assert_clean(run([shellcheck, *scripts]))

"""`make demo` (interim): starts on a fresh data dir, its printed commands answer as printed, and it resumes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from auxip_testing.process import free_port

pytestmark = pytest.mark.slow


def run_demo(data_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "auxip_testing.demo", "--data-dir", str(data_dir),
         "--listen", f"127.0.0.1:{free_port()}", "--check"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_starts_answers_and_resumes(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "demo")
    assert "seeding 200 sample Sentinel-1 auxiliary products" in first
    assert re.search(r"catalog .*\(200 products\)", first)
    assert "demo check: 3 commands answered" in first
    password = re.search(r"user\s+demo / (\S+)", first)
    assert password is not None
    assert (tmp_path / "demo" / "demo-password").stat().st_mode & 0o077 == 0

    second = run_demo(tmp_path / "demo")
    assert "seeding" not in second  # resumed on the same data
    assert re.search(r"catalog .*\(200 products\)", second)
    assert f"demo / {password.group(1)}" in second

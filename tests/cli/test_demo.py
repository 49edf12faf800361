"""`make demo`: the whole AUXIP with its live feed; printed commands answer as printed; quarantine; resume."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from auxip_testing.demo import EICAR_NAME, MISNAMED
from auxip_testing.process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def run_demo(data_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "auxip_testing.demo", "--data-dir", str(data_dir),
         "--listen", f"127.0.0.1:{free_port()}", "--check"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_ingests_the_feed_answers_as_printed_and_resumes(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "demo")
    assert "new demo in" in first
    assert "demo check: 4 commands answered as printed" in first
    assert f"('{EICAR_NAME}', 'infected')" in first
    assert f"('{MISNAMED}', 'bad-name')" in first
    password = re.search(r"user\s+demo / (\S+)", first)
    assert password is not None
    assert (tmp_path / "demo" / "demo-password").stat().st_mode & 0o077 == 0
    published = sorted(p.name for p in (tmp_path / "demo" / "products").rglob("*.zip"))
    assert len(published) == 8  # the first batch of 10 inputs less EICAR and the misnamed file

    second = run_demo(tmp_path / "demo")
    assert "resuming on" in second
    assert "(10 inputs fed so far)" in second
    assert f"demo / {password.group(1)}" in second
    assert sorted(p.name for p in (tmp_path / "demo" / "products").rglob("*.zip")) == published

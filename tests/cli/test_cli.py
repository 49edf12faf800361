"""The `auxip` command line: exit codes, --json output, and `serve` as an operator runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from auxip.cli import app
from auxip_testing.process import free_port, wait_until

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "auxip.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\napi:\n  listen: 127.0.0.1:{free_port()}\n")
    return path


def test_users_add_list_remove_round_trip(config_file: Path) -> None:
    added = runner.invoke(
        app, ["users", "add", "alice", "--role", "download", "--role", "Reporting", "--password-stdin",
              "-c", str(config_file), "--json"], input="s3cret-pass\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.output) == {"username": "alice", "roles": ["Download", "Reporting"]}
    listed = runner.invoke(app, ["users", "list", "-c", str(config_file), "--json"])
    assert json.loads(listed.output) == [{"username": "alice", "roles": ["Download", "Reporting"], "disabled": False}]
    assert runner.invoke(app, ["users", "remove", "alice", "-c", str(config_file)]).exit_code == 0
    missing = runner.invoke(app, ["users", "remove", "alice", "-c", str(config_file)])
    assert missing.exit_code == 1
    assert "no user alice" in missing.output


def test_users_add_refuses_unknown_role_and_missing_password(config_file: Path) -> None:
    bad_role = runner.invoke(
        app, ["users", "add", "bob", "--role", "root", "--password-stdin", "-c", str(config_file)], input="x\n"
    )
    assert bad_role.exit_code == 2
    assert "--role must be one of admin, download, reporting; got root" in bad_role.output
    no_stdin = runner.invoke(app, ["users", "add", "bob", "--role", "download", "-c", str(config_file)])
    assert no_stdin.exit_code == 2
    assert "--password-stdin" in no_stdin.output


def test_config_check_names_the_bad_key(tmp_path: Path, config_file: Path) -> None:
    good = runner.invoke(app, ["config", "check", str(config_file), "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["catalog"].startswith("sqlite:///")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"data_dir: {tmp_path}\napi:\n  listen: nowhere\n  max_page_sise: 10\n")
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert "api.listen: String should match pattern" in result.output
    assert "api.max_page_sise: unknown key" in result.output


def test_environment_overrides_a_key(tmp_path: Path, config_file: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "auxip.cli", "config", "check", str(config_file), "--json"],
        env={**os.environ, "AUXIP_API__LISTEN": f"127.0.0.1:{port}"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["listen"] == f"127.0.0.1:{port}"


def test_serve_answers_and_stops_cleanly_on_interrupt(config_file: Path) -> None:
    listen = next(line.split()[-1] for line in config_file.read_text().splitlines() if "listen" in line)
    process = subprocess.Popen(
        [sys.executable, "-m", "auxip.cli", "serve", "-c", str(config_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: requests.get(f"http://{listen}/health/ready", timeout=1).ok, 30, "auxip serve")
        root = requests.get(f"http://{listen}/odata/v1/", timeout=5).json()
        assert [entity["name"] for entity in root["value"]] == ["Products", "Subscriptions", "Metrics"]
        assert requests.get(f"http://{listen}/odata/v1/Products", timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    # Every stdout line is one JSON document; the access log's among them.
    logged = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert {"method": "GET", "path": "/odata/v1/Products", "status": 401} in [
        {key: entry[key] for key in ("method", "path", "status")} for entry in logged if "method" in entry
    ]

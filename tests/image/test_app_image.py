"""The apps image (Containerfile) built with podman from the local base, run as CI and production would run it.

The container runs read-only as uid 10001 with only /tmp (tmpfs) and the data volume writable; the API is reached
through a port published on 127.0.0.1, the config-file variant from inside the container with `podman exec`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auxip_testing import app_image, hosts
from auxip_testing.process import free_port, wait_until

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

READY_TIMEOUT = 60.0
UID = str(app_image.APP_UID)
#: Per-session names, and the test-host label, so a session killed before its finally blocks ran cannot collide with
#: the next one, which removes its leftovers with the test hosts' own clean-up.
NAME_PREFIX = f"auxip-img-{os.getpid()}"


def _podman(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check)


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a fixed http URL on loopback
        return response.status, json.loads(response.read())


def _data_dir(path: Path) -> Path:
    """A volume the container user can write: owned by its uid when we are root (CI), world-writable otherwise."""
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, app_image.APP_UID, app_image.APP_UID)
    else:
        path.chmod(0o777)
    return path


@dataclass(frozen=True)
class Running:
    name: str
    data: Path
    port: int
    started_to_ready: float

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def running(image: str, data: Path, name: str, *extra: str, command: tuple[str, ...] = ("serve",)) -> Iterator[str]:
    """`podman run -d` the image the way the README documents it; the container is removed whatever happens."""
    args = [
        "run",
        "--detach",
        "--name",
        name,
        "--runtime",
        "runc",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--volume",
        f"{data}:/var/lib/auxip",
        "--user",
        UID,
        # No systemd here to schedule the HEALTHCHECK timer; the tests run it with `podman healthcheck run`.
        "--health-interval",
        "disable",
        "--label",
        f"{hosts.LABEL}={os.getpid()}",
        *extra,
        image,
        *command,
    ]
    try:
        _podman(*args)
        yield name
    finally:
        logs = _podman("logs", "--tail", "20", name, check=False)
        print(f"--- last log lines of {name}:\n{logs.stdout}{logs.stderr}", file=sys.stderr)
        _podman("rm", "--force", "--ignore", "--time", "0", name, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    hosts.remove_stale_hosts()
    started = time.monotonic()
    ref = app_image.ensure_image()
    print(f"[image] {ref} ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return ref


@pytest.fixture(scope="module")
def service(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = _data_dir(tmp_path_factory.mktemp("app-image") / "data")
    port = free_port()
    started = time.monotonic()
    with running(
        image,
        data,
        f"{NAME_PREFIX}-env",
        "--env",
        "AUXIP_API__LISTEN=0.0.0.0:8080",
        "--publish",
        f"127.0.0.1:{port}:8080",
    ) as name:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health/ready")[0] == 200, READY_TIMEOUT, f"{name} ready")
        ready_after = time.monotonic() - started
        print(f"[image] {name} ready {ready_after:.1f}s after podman run", file=sys.stderr)
        yield Running(name, data, port, ready_after)


def test_ready_and_live_answer(service: Running) -> None:
    assert _get(service.url("/health/ready")) == (200, {"status": "ready"})
    status, _ = _get(service.url("/health/live"))
    assert status == 200


def test_odata_root_serves_the_service_document(service: Running) -> None:
    status, document = _get(service.url("/odata/v1/"))
    assert status == 200
    assert document["@odata.context"] == "$metadata"
    sets = {entry["name"]: entry for entry in document["value"]}
    assert sets["Products"] == {"name": "Products", "kind": "EntitySet", "url": "Products"}


def test_runs_as_uid_10001_on_a_read_only_root(service: Running) -> None:
    assert _podman("exec", service.name, "id", "-u").stdout.strip() == UID
    # Every process of the container (tini as PID 1 and the service under it) as seen from the host.
    rows = [line.split(None, 1) for line in _podman("top", service.name, "huser", "args").stdout.splitlines()[1:]]
    assert {user for user, _ in rows} == {UID}
    assert any("/opt/auxip/bin/auxip serve" in args for _, args in rows), rows
    # The catalog was created in the volume by the container user; nothing else is writable.
    assert (service.data / "catalog.db").stat().st_uid == app_image.APP_UID
    write = _podman("exec", service.name, "touch", "/opt/auxip/probe", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def test_healthcheck_reports_healthy(service: Running) -> None:
    assert _podman("healthcheck", "run", service.name).returncode == 0
    health = _podman("inspect", "--format", "{{.State.Health.Status}}", service.name).stdout.strip()
    assert health == "healthy"


def test_help_runs_through_the_entrypoint(image: str) -> None:
    result = _podman("run", "--rm", "--runtime", "runc", "--read-only", image, "--help")
    assert "Usage: auxip" in result.stdout
    assert "serve" in result.stdout


def test_default_config_serves_on_all_interfaces_from_the_volume(image: str) -> None:
    result = _podman(
        "run", "--rm", "--runtime", "runc", "--read-only", image, "config", "check", "/etc/auxip/auxip.yaml", "--json"
    )
    assert json.loads(result.stdout) == {
        "data_dir": "/var/lib/auxip",
        "listen": "0.0.0.0:8080",
        "catalog": "sqlite:////var/lib/auxip/catalog.db",
    }


def test_image_metadata(image: str) -> None:
    (inspected,) = json.loads(_podman("image", "inspect", image).stdout)
    config = inspected["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "auxip"]
    assert config["Cmd"] == ["serve", "--config", "/etc/auxip/auxip.yaml"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert "/var/lib/auxip" in config["Volumes"]
    assert config["WorkingDir"] == "/var/lib/auxip"
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    assert inspected["Healthcheck"]["Test"][:2] == ["CMD", "python3"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == app_image.project_version()
    assert labels["org.opencontainers.image.base.name"].startswith(f"{app_image.BASE_REPOSITORY}@sha256:")


def test_no_build_tools_and_no_pip(image: str) -> None:
    probe = (
        "import importlib.util, json, shutil; "
        "print(json.dumps({'tools': [t for t in ('gcc', 'cc', 'c++', 'make', 'pip', 'pip3') if shutil.which(t)], "
        "'pip_module': importlib.util.find_spec('pip') is not None}))"
    )
    result = _podman("run", "--rm", "--runtime", "runc", "--entrypoint", "python3", image, "-c", probe)
    assert json.loads(result.stdout) == {"tools": [], "pip_module": False}


def test_config_file_mounted_read_only_and_graceful_stop(image: str, tmp_path: Path) -> None:
    config = tmp_path / "auxip.yaml"
    config.write_text("data_dir: /var/lib/auxip\napi:\n  listen: 0.0.0.0:9090\nlog_format: text\n")
    config.chmod(0o644)
    data = _data_dir(tmp_path / "data")
    probe = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9090/health/ready').read().decode())"
    with running(
        image,
        data,
        f"{NAME_PREFIX}-file",
        # Over the image's default config, which the default command reads.
        "--volume",
        f"{config}:/etc/auxip/auxip.yaml:ro",
        command=(),
    ) as name:

        def ready() -> bool:
            answer = _podman("exec", name, "python3", "-c", probe, check=False)
            return answer.returncode == 0 and json.loads(answer.stdout) == {"status": "ready"}

        wait_until(ready, READY_TIMEOUT, f"{name} ready on 9090")
        started = time.monotonic()
        _podman("stop", "--time", "20", name)
        stopped_after = time.monotonic() - started
        # tini forwards SIGTERM and the service exits cleanly, well before podman's SIGKILL deadline.
        assert _podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        assert stopped_after < 10

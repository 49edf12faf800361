"""`auxip serve --role`: a process runs only its roles; without `api` it serves health and metrics only.

Routing documents (`routing_documents`, the `auxip-routes` ConfigMap on the cluster) add sources, routes and inboxes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import func, select

from auxip.catalog.migrate import make_engine
from auxip.config import PROCESS_ROLES, ConfigError, load_config
from auxip.ingest.models import IngestItem
from auxip_testing.process import free_port, port_open
from auxip_testing.sample_feed import feed

AUXIP = str(Path(sys.executable).with_name("auxip"))


def _config(tmp_path: Path, **extra: object) -> tuple[Path, int]:
    port = free_port()
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    document = {
        "data_dir": str(tmp_path / "data"),
        "api": {"listen": f"127.0.0.1:{port}"},
        "sources": [{"name": "local", "url": inbox.as_uri(), "poll_interval": 0.2, "settle_seconds": 0}],
        "scanner": "disabled",
        "ingest": {"sweep_seconds": 0.1},
        **extra,
    }
    path = tmp_path / "auxip.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, port


Serve = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(config: Path, port: int, *roles: str) -> subprocess.Popen[bytes]:
        argv = [AUXIP, "serve", "--config", str(config), *[arg for role in roles for arg in ("--role", role)]]
        log = (tmp_path / f"serve-{len(processes)}.log").open("ab")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        deadline = time.monotonic() + 30
        while not port_open(port):
            assert process.poll() is None, (tmp_path / "serve-0.log").read_text()
            assert time.monotonic() < deadline, "not listening within 30 s"
            time.sleep(0.1)
        return process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def _items(tmp_path: Path) -> int:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(IngestItem)).scalar_one())
    finally:
        engine.dispose()


def test_a_process_without_the_api_serves_health_and_metrics_only(tmp_path: Path, serve: Serve) -> None:
    config, port = _config(tmp_path)
    feed(tmp_path / "inbox", 3, seed=41, sizes=(2_000, 4_000))
    serve(config, port, "ingest", "evict")
    base = f"http://127.0.0.1:{port}"
    assert requests.get(f"{base}/health/live", timeout=5).json() == {"status": "live"}
    assert requests.get(f"{base}/health/ready", timeout=5).status_code == 200
    assert requests.get(f"{base}/odata/v1/", timeout=5).status_code == 404
    assert requests.post(f"{base}/auth/token", timeout=5).status_code == 404
    assert 'auxip_process_info{roles="ingest,evict"} 1.0' in requests.get(f"{base}/metrics", timeout=5).text
    deadline = time.monotonic() + 30
    while _items(tmp_path) < 3:  # the ingest role discovers
        assert time.monotonic() < deadline, "the ingest process discovered nothing"
        time.sleep(0.2)


def test_an_api_process_does_not_ingest(tmp_path: Path, serve: Serve) -> None:
    config, port = _config(tmp_path)
    feed(tmp_path / "inbox", 3, seed=42, sizes=(2_000, 4_000))
    serve(config, port, "api")
    base = f"http://127.0.0.1:{port}"
    assert requests.get(f"{base}/odata/v1/", timeout=5).status_code == 200
    assert 'auxip_process_info{roles="api"} 1.0' in requests.get(f"{base}/metrics", timeout=5).text
    time.sleep(2.0)  # ten polls of the source, had it been polled
    assert _items(tmp_path) == 0


def test_roles_from_the_config_and_bad_roles_named(tmp_path: Path) -> None:
    config, _port = _config(tmp_path, roles=["notify", "api", "notify"])
    assert load_config(config, {}).roles == ["api", "notify"]
    assert load_config(_config(tmp_path)[0], {}).roles == list(PROCESS_ROLES)
    bad, _ = _config(tmp_path, roles=["api", "publish"])
    with pytest.raises(ConfigError, match=r"roles\.1: Input should be 'api', 'ingest', 'route', 'notify' or 'evict'"):
        load_config(bad, {})
    refused = subprocess.run([AUXIP, "serve", "--config", str(config), "--role", "publish"], capture_output=True)
    assert refused.returncode == 2
    assert b"'publish' is not one of" in refused.stderr


def test_routing_documents_add_sources_routes_and_inboxes(tmp_path: Path) -> None:
    document = {
        "sources": [{"name": "mp-outbox", "url": (tmp_path / "outbox").as_uri()}],
        "routes": [{"name": "mp-to-sra", "trigger": {"source": "mp-outbox"}, "targets": [
            {"name": "sra", "url": "inbox://sra"}]}],
        "inboxes": {"sra": {"url": (tmp_path / "sra-inbox").as_uri()}},
    }  # fmt: skip
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump(document))
    config, _port = _config(tmp_path, routing_documents=[str(routes)])
    loaded = load_config(config, {})
    assert [source.name for source in loaded.sources] == ["local", "mp-outbox"]
    assert [route.name for route in loaded.routes] == ["mp-to-sra"]
    # The inbox of the document resolved the route's `inbox://sra` target.
    assert loaded.routes[0].targets[0].url == (tmp_path / "sra-inbox").as_uri()
    routes.write_text(json.dumps({"sources": [], "subscriptions": []}))
    with pytest.raises(ConfigError, match=r"routing_documents\.0: .* must be a mapping of sources, routes, inboxes"):
        load_config(config, {})
    target = {"name": "t", "url": "file:///srv/t"}
    routes.write_text(
        yaml.safe_dump({"routes": [{"name": "x", "trigger": {"source": "nowhere"}, "targets": [target]}]})
    )
    with pytest.raises(
        ConfigError,
        match=r"with the routing documents .*routes\.yaml\):\n.*routes\.0\.trigger\.source: no source named 'nowhere'",
    ):
        load_config(config, {})

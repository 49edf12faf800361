"""`auxip routes list|retry` and `auxip status` on deliveries the real routing engine made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from auxip.cli import app
from auxip.config import load_config
from auxip_testing.clamd import ClamdServer
from auxip_testing.ingest import running_pipeline, settled, wait_until

pytestmark = pytest.mark.integration

runner = CliRunner()


async def test_dead_letter_listed_retried_and_delivered(tmp_path: Path, clamd: ClamdServer) -> None:
    outbox, target = tmp_path / "outbox", tmp_path / "not-mounted-yet"
    outbox.mkdir()
    (outbox / "MP_PLAN_001.xml").write_bytes(b"<plan/>" * 1000)
    path = tmp_path / "auxip.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "sources": [{"name": "mp-outbox", "url": outbox.as_uri(), "poll_interval": 0.2, "settle_seconds": 0}],
                "scanner": {"url": f"tcp://{clamd.host}:{clamd.port}"},
                "ingest": {"sweep_seconds": 0.1},
                "routes": [
                    {
                        "name": "mp-out",
                        "trigger": {"source": "mp-outbox"},
                        "targets": [{"name": "fos", "url": target.as_uri()}],
                        "max_attempts": 1,
                    }
                ],
            }
        )
    )
    config = load_config(path)

    def deliveries(*args: str) -> list[dict[str, object]]:
        result = runner.invoke(app, ["routes", "list", "-c", str(path), "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)  # type: ignore[no-any-return]

    async with running_pipeline(config):
        await wait_until(lambda: len(deliveries("--state", "dead")) == 1, 20, "the delivery dead-lettered")
    dead = deliveries("--state", "dead")[0]
    assert (dead["route"], dead["target"], dead["file_name"], dead["attempts"]) == (
        "mp-out",
        "fos",
        "MP_PLAN_001.xml",
        1,
    )
    assert "PermanentTargetError" in str(dead["last_error"])
    status = json.loads(runner.invoke(app, ["status", "-c", str(path), "--json"]).output)
    assert status["deliveries"] == {"dead": 1}
    assert status["stages"] == {"routing": 1}

    target.mkdir()
    retried = runner.invoke(app, ["routes", "retry", str(dead["id"]), "-c", str(path), "--json"])
    assert json.loads(retried.output) == {"retried": 1}
    async with running_pipeline(config) as engine:
        final = await settled(engine, 1)
    assert final == {"MP_PLAN_001.xml": "routed"}
    assert [d["state"] for d in deliveries()] == ["delivered"]
    assert (target / "MP_PLAN_001.xml").read_bytes() == b"<plan/>" * 1000
    nothing = runner.invoke(app, ["routes", "retry", "-c", str(path)])
    assert nothing.exit_code == 1
    bad = runner.invoke(app, ["routes", "list", "-c", str(path), "--state", "lost"])
    assert bad.exit_code == 2


def test_config_check_explains_route_errors_by_key(tmp_path: Path) -> None:
    path = tmp_path / "auxip.yaml"
    route = {"name": "r", "trigger": {"event": "product.published", "name_pattern": "["},
             "targets": [{"name": "t", "url": "nfs://archive/x"}]}  # fmt: skip
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "routes": [route]}))
    bad = runner.invoke(app, ["config", "check", str(path)])
    assert bad.exit_code == 2
    assert "routes.0.trigger.event.name_pattern: invalid regular expression '['" in bad.output
    assert "routes.0.targets.0.url: unsupported target scheme 'nfs'" in bad.output
    assert "SourceTrigger" not in bad.output  # one kind of trigger is explained, not both
    orphan = {"name": "r", "trigger": {"source": "nowhere"}, "targets": [{"name": "t", "url": "file:///srv/out"}]}
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "routes": [orphan]}))
    missing = runner.invoke(app, ["config", "check", str(path)])
    assert missing.exit_code == 2
    assert "routes.0.trigger.source: no source named 'nowhere' in sources[]" in missing.output

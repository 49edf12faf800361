"""`auxip status` and `auxip quarantine list|release|purge` on a catalog the real pipeline filled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from auxip.catalog.migrate import make_engine, upgrade
from auxip.cli import app
from auxip.config import load_config
from auxip.ingest.models import AuditRecord
from auxip_testing.clamd import ClamdServer, eicar
from auxip_testing.ingest import running_pipeline, settled

pytestmark = pytest.mark.integration

runner = CliRunner()
VIRUS = "S1A_OPER_AUX_RESORB_OPOD_20261130T110000_V20261130T080000_20261130T110000.EOF"


@pytest.fixture
async def ingested(tmp_path: Path, clamd: ClamdServer) -> Path:
    """A config file whose pipeline has quarantined two files (EICAR, a bad name) and published nothing else."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / VIRUS).write_bytes(eicar())
    (inbox / "README.txt").write_text("not a product")
    path = tmp_path / "auxip.yaml"
    document = {
        "data_dir": str(tmp_path / "data"),
        "sources": [{"name": "local", "url": inbox.as_uri(), "poll_interval": 0.2, "settle_seconds": 0}],
        "scanner": {"url": f"tcp://{clamd.host}:{clamd.port}"},
        "ingest": {"sweep_seconds": 0.1, "retry_base_seconds": 0.1},
    }
    path.write_text(yaml.safe_dump(document))
    config = load_config(path)
    config.data_dir.mkdir(parents=True)
    upgrade(config.catalog_url)
    async with running_pipeline(config) as engine:
        await settled(engine, 2)
    return path


def test_status_counts_items_per_state(ingested: Path) -> None:
    result = runner.invoke(app, ["status", "-c", str(ingested), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["stages"] == {"quarantined": 2}
    assert summary["quarantined"] == 2
    assert summary["backlog"] == 0
    assert summary["published"] == {"last_5_minutes": 0, "last_hour": 0}
    assert summary["last_errors"] == []
    assert summary["deliveries"] == {}


def test_quarantine_list_release_purge_are_audited(ingested: Path) -> None:
    listed = runner.invoke(app, ["quarantine", "list", "-c", str(ingested), "--json"])
    assert listed.exit_code == 0, listed.output
    entries = {entry["name"]: entry for entry in json.loads(listed.output)}
    assert {name: entry["reason"] for name, entry in entries.items()} == {VIRUS: "infected", "README.txt": "bad-name"}
    assert entries[VIRUS]["signature"] == "Auxip-Test-EICAR.UNOFFICIAL"

    purged = runner.invoke(
        app, ["quarantine", "purge", str(entries[VIRUS]["id"]), "-c", str(ingested), "--actor", "ops"]
    )
    assert purged.exit_code == 0, purged.output
    again = runner.invoke(app, ["quarantine", "purge", str(entries[VIRUS]["id"]), "-c", str(ingested)])
    assert again.exit_code == 1
    assert "no held quarantine entry" in again.output
    released = runner.invoke(app, ["quarantine", "release", str(entries["README.txt"]["id"]), "-c", str(ingested)])
    assert released.exit_code == 0, released.output

    held = json.loads(runner.invoke(app, ["quarantine", "list", "-c", str(ingested), "--json"]).output)
    assert held == []
    every = json.loads(runner.invoke(app, ["quarantine", "list", "--all", "-c", str(ingested), "--json"]).output)
    assert {entry["name"]: entry["status"] for entry in every} == {VIRUS: "purged", "README.txt": "released"}
    status = json.loads(runner.invoke(app, ["status", "-c", str(ingested), "--json"]).output)
    assert status["stages"] == {"quarantined": 1, "scanned": 1}  # the released file waits to be prepared again
    assert status["backlog"] == 1

    engine = make_engine(load_config(ingested).catalog_url)
    with engine.connect() as conn:
        actions = conn.execute(select(AuditRecord.actor, AuditRecord.action).order_by(AuditRecord.id)).tuples().all()
    engine.dispose()
    assert actions[-2:] == [("ops", "quarantine.purge"), ("operator", "quarantine.release")]
    assert [action for _actor, action in actions].count("quarantine.add") == 2


def test_sources_without_a_scanner_are_refused_and_disabled_must_be_explicit(tmp_path: Path) -> None:
    path = tmp_path / "auxip.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "sources": [{"name": "a", "url": "file:///srv/in"}]}))
    refused = runner.invoke(app, ["config", "check", str(path)])
    assert refused.exit_code == 2
    assert "scanner: required when sources are configured" in refused.output
    path.write_text(
        yaml.safe_dump(
            {"data_dir": str(tmp_path), "scanner": "disabled", "sources": [{"name": "a", "url": "file:///srv/in"}]}
        )
    )
    assert runner.invoke(app, ["config", "check", str(path)]).exit_code == 0

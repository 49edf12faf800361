"""`auxip sources list|test`: persisted source state after real polls, and one-off listings (local dir, real SFTP)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml
from typer.testing import CliRunner

from auxip.cli import app
from auxip.cli.common import open_catalog
from auxip.config import load_config
from auxip.ingest.discovery import Discovery
from auxip.ingest.sources.factory import open_source
from auxip_testing.sftp import SftpServer

runner = CliRunner()
EOF_A = "S1A_OPER_AUX_RESORB_OPOD_20261130T110000_V20261130T080000_20261130T110000.EOF"
EOF_B = "S1B_OPER_AUX_POEORB_OPOD_20261130T120000_V20261129T225942_20261201T005942.EOF"
HOUR_AGO = time.time() - 3600


def write_config(path: Path, data_dir: Path, sources: list[dict[str, Any]]) -> Path:
    document = {"data_dir": str(data_dir), "scanner": "disabled", "sources": sources}
    path.write_text(yaml.safe_dump(document))
    return path


def aged(path: Path, data: bytes = b"orbit") -> None:
    path.write_bytes(data)
    os.utime(path, (HOUR_AGO, HOUR_AGO))


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    aged(folder / EOF_A)
    aged(folder / EOF_B)
    aged(folder / f"{EOF_B}.part")  # an upload in progress is never complete
    return folder


async def poll_once(config_path: Path, name: str) -> None:
    """One real discovery poll, as the pipeline runs it, so the source state and items are the pipeline's own."""
    config = load_config(config_path)
    settings = next(source for source in config.sources if source.name == name)
    engine = open_catalog(config)
    source = open_source(settings)
    try:
        await Discovery(engine, source, settings, config.ingest).poll()
    finally:
        await source.close()
        engine.dispose()


async def test_sources_list_shows_state_and_item_counts(tmp_path: Path, inbox: Path) -> None:
    config = write_config(
        tmp_path / "auxip.yaml",
        tmp_path / "data",
        [
            {"name": "local", "url": inbox.as_uri(), "settle_seconds": 0},
            {"name": "gone", "url": (tmp_path / "missing").as_uri()},
            {"name": "never", "url": "sftp://user:hunter2@sftp.example/in"},
        ],
    )
    await poll_once(config, "local")
    await poll_once(config, "gone")
    result = runner.invoke(app, ["sources", "list", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    by_name = {status["name"]: status for status in json.loads(result.output)}
    local, gone, never = by_name["local"], by_name["gone"], by_name["never"]
    assert local["items"] == {"discovered": 2}
    assert local["consecutive_failures"] == 0
    assert local["last_poll_at"] == local["last_success_at"] is not None
    assert gone["consecutive_failures"] == 1
    assert gone["last_success_at"] is None
    assert "cannot list" in gone["last_error"]
    assert never == {
        "name": "never", "url": "sftp://user:***@sftp.example/in", "last_poll_at": None, "last_success_at": None,
        "consecutive_failures": 0, "circuit_open_until": None, "cursor": None, "last_error": None, "items": {},
    }  # fmt: skip
    table = runner.invoke(app, ["sources", "list", "-c", str(config)])
    assert table.exit_code == 0
    assert "discovered 2" in table.output
    assert "hunter2" not in table.output


def test_sources_test_lists_complete_entries(tmp_path: Path, inbox: Path) -> None:
    config = write_config(
        tmp_path / "auxip.yaml", tmp_path / "data", [{"name": "local", "url": inbox.as_uri(), "settle_seconds": 0}]
    )
    result = runner.invoke(app, ["sources", "test", "local", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    probe = json.loads(result.output)
    assert probe["ok"] is True
    assert probe["complete"] == 2
    assert sorted(probe["first"]) == [EOF_A, EOF_B]
    text = runner.invoke(app, ["sources", "test", "local", "--show", "1", "-c", str(config)])
    assert text.exit_code == 0
    assert "local: 2 complete entries" in text.output


def test_sources_test_failures(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "auxip.yaml", tmp_path / "data", [{"name": "gone", "url": (tmp_path / "missing").as_uri()}]
    )
    failed = runner.invoke(app, ["sources", "test", "gone", "-c", str(config), "--json"])
    assert failed.exit_code == 1
    probe = json.loads(failed.output)
    assert (probe["ok"], probe["error_kind"]) == (False, "transient")
    assert f"gone: cannot list {tmp_path / 'missing'}: No such file or directory" == probe["error"]
    unknown = runner.invoke(app, ["sources", "test", "other", "-c", str(config)])
    assert unknown.exit_code == 1
    assert "no source named other in the configuration (configured: gone)" in unknown.output


@pytest.fixture
def remote(sftp_server: SftpServer) -> Iterator[Path]:
    folder = sftp_server.root / f"cli-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    aged(folder / EOF_A)
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def sftp_config(tmp_path: Path, server: SftpServer, folder: Path, known_hosts: Path) -> Path:
    credentials = tmp_path / "sftp-credentials.yaml"
    credentials.write_text(
        yaml.safe_dump(
            {"username": server.username, "private_key": str(server.private_key), "known_hosts": str(known_hosts)}
        )
    )
    source = {
        "name": "pdgs",
        "url": f"sftp://{server.host}:{server.port}{folder}",
        "credentials": f"file:{credentials}",
    }
    return write_config(tmp_path / "auxip.yaml", tmp_path / "data", [source])


@pytest.mark.integration
def test_sources_test_against_sftp(tmp_path: Path, sftp_server: SftpServer, remote: Path) -> None:
    config = sftp_config(tmp_path, sftp_server, remote, sftp_server.known_hosts)
    result = runner.invoke(app, ["sources", "test", "pdgs", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["first"] == [EOF_A]


@pytest.mark.integration
def test_sources_test_names_an_untrusted_host_key(tmp_path: Path, sftp_server: SftpServer, remote: Path) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sftp_server.host}]:{sftp_server.port} {' '.join(impostor)}\n")
    config = sftp_config(tmp_path, sftp_server, remote, known_hosts)
    result = runner.invoke(app, ["sources", "test", "pdgs", "-c", str(config)])
    assert result.exit_code == 1
    assert "pdgs: permanent error:" in result.output
    assert "host key not trusted by known_hosts" in result.output

"""Schema migrations once per release: `auxip migrate`, and processes that refuse a catalog of another release."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from auxip.catalog.migrate import make_engine, schema_revisions, upgrade
from auxip.cli import app
from auxip_testing.postgres import PostgresServer

runner = CliRunner()
HEAD = schema_revisions("sqlite://")[1]


def write_config(tmp_path: Path, migrate: bool, url: str | None = None) -> Path:
    path = tmp_path / "auxip.yaml"
    catalog = {"migrate": migrate, **({"url": url} if url else {})}
    path.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "catalog": catalog}))
    return path


def sqlite_url(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    return f"sqlite:///{tmp_path / 'data' / 'catalog.db'}"


def test_a_replica_that_may_not_migrate_waits_for_the_migration_job(tmp_path: Path) -> None:
    config = write_config(tmp_path, migrate=False)
    refused = runner.invoke(app, ["users", "list", "-c", str(config)])
    assert refused.exit_code == 2
    assert f"at revision none (empty database), this release needs {HEAD}" in refused.output
    assert "run `auxip migrate` once for this release" in refused.output
    migrated = runner.invoke(app, ["migrate", "-c", str(config), "--json"])
    assert migrated.exit_code == 0, migrated.output
    assert json.loads(migrated.output) == {"from": None, "to": HEAD}
    assert runner.invoke(app, ["users", "list", "-c", str(config), "--json"]).output.strip() == "[]"
    again = runner.invoke(app, ["migrate", "-c", str(config), "--json"])
    assert json.loads(again.output) == {"from": HEAD, "to": HEAD}


def test_an_older_catalog_is_refused_or_migrated_as_configured(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    upgrade(url, "0007")
    refused = runner.invoke(app, ["users", "list", "-c", str(write_config(tmp_path, migrate=False))])
    assert refused.exit_code == 2
    assert f"at revision 0007, this release needs {HEAD}" in refused.output
    assert schema_revisions(url)[0] == "0007"  # a refusing process changes nothing
    accepted = runner.invoke(app, ["users", "list", "-c", str(write_config(tmp_path, migrate=True))])
    assert accepted.exit_code == 0, accepted.output
    assert schema_revisions(url)[0] == HEAD


@pytest.mark.parametrize("migrate", [True, False])
def test_a_catalog_migrated_by_a_newer_release_is_refused(tmp_path: Path, migrate: bool) -> None:
    url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()
    refused = runner.invoke(app, ["users", "list", "-c", str(write_config(tmp_path, migrate=migrate))])
    assert refused.exit_code == 2
    assert "at revision 0042, which this release does not know" in refused.output
    assert "migrated by a newer release" in refused.output


@pytest.fixture
def empty_database(postgres: PostgresServer) -> Iterator[PostgresServer]:
    database = postgres.create_database("migrate")
    yield database
    postgres.drop_database(database.dbname)


@pytest.mark.integration
def test_concurrent_migration_jobs_on_postgresql_migrate_once(empty_database: PostgresServer, tmp_path: Path) -> None:
    # Three `auxip migrate` started together (a Job retried while its first pod still runs, say): the advisory lock
    # queues them, the first migrates, the others find the schema at head.
    config = write_config(tmp_path, migrate=False, url=empty_database.sqlalchemy_url)
    auxip = str(Path(sys.executable).with_name("auxip"))
    jobs = [
        subprocess.Popen([auxip, "migrate", "-c", str(config), "--json"], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [json.loads(job.communicate(timeout=120)[0]) for job in jobs]
    assert all(job.returncode == 0 for job in jobs)
    assert {result["to"] for result in results} == {HEAD}
    assert schema_revisions(empty_database.sqlalchemy_url)[0] == HEAD

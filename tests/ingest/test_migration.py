"""Revision 0007 creates exactly what `auxip.ingest.models` declares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from auxip.catalog.migrate import alembic_config, make_engine, upgrade
from auxip_testing.databases import BACKENDS, database_url, schema_differences

TABLES = {"ingest_item", "ingest_quarantine", "ingest_audit", "ingest_source_state", "bus_event", "bus_offset"}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request, tmp_path, "ingest")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_migrated_ingestion_tables_match_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert schema_differences(engine, TABLES) == []


def test_downgrade_removes_the_tables_and_upgrade_restores_them(engine: Engine, db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0006")
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(alembic_config(db_url), "head")
    assert schema_differences(engine, TABLES) == []

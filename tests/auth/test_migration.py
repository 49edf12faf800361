"""Revision 0002 (users, download_record) applies on SQLite and PostgreSQL and gives exactly the ORM metadata.

Later revisions (other packages' tables) may sit on top of 0002, so the comparison is restricted to the auth tables:
the catalog's own tests compare the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

import auxip.auth.models  # noqa: F401 - registers the auth tables on Base.metadata
from auxip.catalog.migrate import alembic_config, make_engine, upgrade
from auxip_testing.databases import BACKENDS, database_url, schema_differences

CATALOG_TABLES = {"alembic_version", "product", "product_checksum", "product_attribute", "publication_clock"}
AUTH_TABLES = {"users", "download_record"}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request, tmp_path, "auth")


@pytest.fixture
def migrated(db_url: str) -> Iterator[Engine]:
    upgrade(db_url, "0002")
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_0002_matches_orm_metadata(migrated: Engine) -> None:
    assert schema_differences(migrated, AUTH_TABLES) == []
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0002"
    assert set(inspect(migrated).get_table_names()) == CATALOG_TABLES | AUTH_TABLES
    inspector = inspect(migrated)
    assert {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("download_record")} == {
        "ix_download_record_user_started": ["username", "started_at"]
    }
    assert {uq["name"]: uq["column_names"] for uq in inspector.get_unique_constraints("users")} == {
        "uq_users_username": ["username"]
    }


def test_comparison_sees_the_auth_tables(migrated: Engine) -> None:
    # Guard against a comparison that ignores the new tables.
    with migrated.begin() as conn:
        conn.execute(text("DROP INDEX ix_download_record_user_started"))
    differences = schema_differences(migrated, AUTH_TABLES)
    assert [(d[0], d[1].name) for d in differences] == [("add_index", "ix_download_record_user_started")]  # type: ignore[index]


def test_head_keeps_the_auth_tables(db_url: str, migrated: Engine) -> None:
    upgrade(db_url)
    assert schema_differences(migrated, AUTH_TABLES) == []


def test_downgrade_to_0001_and_back(db_url: str, migrated: Engine) -> None:
    command.downgrade(alembic_config(db_url), "0001")
    assert set(inspect(migrated).get_table_names()) == CATALOG_TABLES
    upgrade(db_url, "0002")
    assert schema_differences(migrated, AUTH_TABLES) == []

"""Revision 0008 creates exactly what `auxip.routing.models` declares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from auxip.catalog.migrate import alembic_config
from auxip_testing.databases import BACKENDS, migrated_engine, schema_differences

TABLES = {"route_delivery", "route_attempt", "route_target_state"}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from migrated_engine(request, tmp_path, "routing")


def test_migrated_routing_tables_match_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert schema_differences(engine, TABLES) == []


def test_downgrade_to_0007_removes_them(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0007")
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(alembic_config(url), "head")
    assert schema_differences(engine, TABLES) == []

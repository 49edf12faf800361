"""One empty database per test on each catalog backend: a SQLite file, or a fresh database on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, Table
from sqlalchemy.schema import SchemaItem

from auxip.catalog.migrate import include_object, make_engine, upgrade
from auxip.schema import metadata

#: Parametrise a fixture with these; the PostgreSQL case is an integration test (it starts the server).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def database_url(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Iterator[str]:
    """For a fixture parametrised with BACKENDS: an empty database's SQLAlchemy URL, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / f'{prefix}.db'}"
        return
    server = request.getfixturevalue("postgres")
    # One database per test: full isolation, and the catalog's single clock row cannot leak between tests.
    database = server.create_database(prefix)
    try:
        yield database.sqlalchemy_url
    finally:
        server.drop_database(database.dbname)


def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Iterator[Engine]:
    """For a fixture parametrised with BACKENDS: an engine on an empty database migrated to head, disposed after."""
    for url in database_url(request, tmp_path, prefix):
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


def schema_differences(engine: Engine, tables: Collection[str] | None = None) -> list[Any]:
    """Alembic's comparison of the migrated database with every model (`auxip.schema.metadata`), optionally only
    for `tables`: an empty list means the migrations create exactly what the models declare."""

    def included(obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: Any, dialect: str) -> bool:
        table = obj if isinstance(obj, Table) else getattr(obj, "table", None)
        if tables is not None and (not isinstance(table, Table) or table.name not in tables):
            return False
        return include_object(obj, name, type_, reflected, compare_to, dialect_name=dialect)

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": partial(included, dialect=conn.dialect.name),
            },
        )
        return list(compare_metadata(context, metadata))

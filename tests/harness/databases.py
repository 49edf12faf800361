"""One empty database per test on each catalog backend: a SQLite file, or a fresh database on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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

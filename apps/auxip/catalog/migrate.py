"""Alembic run from code: no alembic.ini, the environment lives in this package (`migrations/`).

`upgrade(url)` (alias `create_schema`) brings a database to the head revision; the URL goes through
`Config.attributes`, not the ini-style options, so passwords with `%` need no escaping and never land in a file.
Concurrent upgrades queue on a PostgreSQL advisory lock (`migrations/env.py`). `prepare(url, migrate)` is what a
process does at start: upgrade (one machine, `catalog.migrate: true`) or only check that the catalog is at this
release's head (replicas on a cluster, where the release's migration Job runs `auxip migrate` once); either way a
catalog of another release is refused with a message that says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.schema import SchemaItem

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"


def with_driver(url: str | URL) -> str | URL:
    """`postgresql://` (what CloudNativePG's `<cluster>-app` Secret holds as `uri`) means psycopg 3, the driver the
    AUXIP ships: SQLAlchemy would otherwise pick psycopg2."""
    if isinstance(url, str) and url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.partition("://")[2]
    return url


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine configured for the catalog (SQLite: foreign keys on, wait for the write lock instead of failing)."""
    engine = create_engine(with_driver(url), **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            # Publishers queue on the database write lock (the publication clock); wait for it like PostgreSQL would.
            cursor.execute("PRAGMA busy_timeout = 60000")
            # WAL: readers (the API) never wait for the writer (the pipeline), and a commit is one append instead
            # of a rollback-journal rewrite; NORMAL syncs at checkpoints, so a power cut may lose the last commits
            # but never corrupts the file — and every pipeline stage is redone from its last committed state.
            # Measured on the ingestion benchmark (500 small files): 56 s -> 21 s.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

    return engine


def alembic_config(url: str | URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` against `url`."""
    command.upgrade(alembic_config(url), revision)


create_schema = upgrade


class SchemaMismatchError(RuntimeError):
    """The catalog's schema is not the one this release was built for; the message says which and what to do."""


def schema_revisions(url: str | URL) -> tuple[str | None, str]:
    """(the catalog's current revision or None when it has none yet, this release's head revision)."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None  # the package ships its migrations
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return current, head


def prepare(url: str | URL, migrate: bool) -> None:
    """Bring the catalog to this release's schema (`migrate`), or check that it is there; refuse any other."""
    current, head = schema_revisions(url)
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaMismatchError(
            f"the catalog's schema is at revision {current}, which this release does not know (its newest is "
            f"{head}): the catalog was migrated by a newer release; run that release, or restore a backup taken "
            "before the upgrade"
        )
    if not migrate:
        raise SchemaMismatchError(
            f"the catalog's schema is at revision {current or 'none (empty database)'}, this release needs {head}: "
            "run `auxip migrate` once for this release (on a cluster, the release's migration Job) before "
            "starting its services, or set catalog.migrate: true"
        )
    upgrade(url)


def include_object(
    obj: SchemaItem,
    name: str | None,
    type_: Literal["schema", "table", "column", "index", "unique_constraint", "foreign_key_constraint"],
    reflected: bool,
    compare_to: SchemaItem | None,
    *,
    dialect_name: str,
) -> bool:
    """Schema comparison filter: skip metadata objects restricted by `ddl_if` to another dialect.

    Alembic ignores `ddl_if`, so without this the PostgreSQL-only name pattern index would show up as missing on SQLite.
    """
    ddl_if = getattr(obj, "_ddl_if", None)
    if reflected or ddl_if is None or ddl_if.dialect is None:
        return True
    dialects = (ddl_if.dialect,) if isinstance(ddl_if.dialect, str) else tuple(ddl_if.dialect)
    return dialect_name in dialects

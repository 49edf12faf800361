"""Alembic environment: online migrations only, the URL or a live connection comes from `auxip.catalog.migrate`."""

from __future__ import annotations

from functools import partial

from alembic import context
from sqlalchemy import Connection

from auxip.catalog.migrate import include_object, make_engine
from auxip.schema import metadata

#: Any constant: every process migrating the same PostgreSQL database queues on this advisory lock.
MIGRATION_LOCK = 0x4155584950


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two services starting at once on an empty database would both create alembic_version; the second
        # waits here, then finds the schema at head and does nothing. Released when the transaction ends.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=partial(include_object, dialect_name=connection.dialect.name),
        # SQLite cannot ALTER most things in place; batch mode (copy and move) keeps future revisions portable.
        render_as_batch=connection.dialect.name == "sqlite",
        # One transaction for the whole upgrade where the backend supports transactional DDL (both of ours do).
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.attributes["url"])
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported for the catalog")
run_migrations_online()

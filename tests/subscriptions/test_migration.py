"""Revision 0003 creates exactly what `auxip.subscriptions.models` declares, and seeds the matcher cursor."""

from __future__ import annotations

from functools import partial
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from auxip.catalog.clock import EPOCH
from auxip.catalog.migrate import alembic_config, include_object
from auxip.schema import metadata
from auxip.subscriptions.models import MatcherCursor

TABLES = {"subscription", "subscription_notification", "subscription_matcher_cursor"}


def _table_of(diff: Any) -> str | None:
    # compare_metadata yields tuples like ("add_index", Index) or lists of column modifications.
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        name = getattr(part, "name", None)
        if isinstance(part, str) and part in TABLES:
            return part
        if hasattr(part, "columns") and name:
            return str(name)
    return None


def _subscription_differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": partial(include_object, dialect_name=conn.dialect.name),
            },
        )
        return [diff for diff in compare_metadata(context, metadata) if _table_of(diff) in TABLES]


def test_migrated_subscription_tables_match_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert _subscription_differences(engine) == []


def test_cursor_starts_at_the_publication_clock(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(select(MatcherCursor.id, MatcherCursor.last_publication_date)).tuples().all() == [
            (1, EPOCH)
        ]


def test_downgrade_removes_the_tables_and_upgrade_restores_them(engine: Engine, db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0002")
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(alembic_config(db_url), "head")
    assert _subscription_differences(engine) == []


def test_comparison_detects_a_missing_index(engine: Engine) -> None:
    # Guard against a filter that silently drops every difference.
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_notification_due")
    differences = _subscription_differences(engine)
    assert [(diff[0], diff[1].name) for diff in differences] == [("add_index", "ix_notification_due")]

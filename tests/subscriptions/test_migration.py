"""Revision 0003 creates exactly what `auxip.subscriptions.models` declares, and seeds the matcher cursor."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect, select

from auxip.catalog.clock import EPOCH
from auxip.catalog.migrate import alembic_config
from auxip.subscriptions.models import MatcherCursor
from auxip_testing.databases import schema_differences

TABLES = {"subscription", "subscription_notification", "subscription_matcher_cursor"}


def test_migrated_subscription_tables_match_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert schema_differences(engine, TABLES) == []


def test_cursor_starts_at_the_publication_clock(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(select(MatcherCursor.id, MatcherCursor.last_publication_date)).tuples().all() == [
            (1, EPOCH)
        ]


def test_downgrade_removes_the_tables_and_upgrade_restores_them(engine: Engine, db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0002")
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(alembic_config(db_url), "head")
    assert schema_differences(engine, TABLES) == []


def test_comparison_detects_a_missing_index(engine: Engine) -> None:
    # Guard against a filter that silently drops every difference.
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_notification_due")
    differences = schema_differences(engine, TABLES)
    assert [(diff[0], diff[1].name) for diff in differences] == [("add_index", "ix_notification_due")]

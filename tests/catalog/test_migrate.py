"""The hand-written migration creates exactly the ORM schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text

from auxip.catalog.clock import EPOCH
from auxip.catalog.migrate import alembic_config, make_engine, upgrade
from auxip.catalog.models import PublicationClock
from auxip_testing.databases import schema_differences

EXPECTED_INDEXES = {
    "ix_product_publication": ["publication_date", "id"],
    "ix_product_content_start": ["content_date_start"],
    "ix_product_content_end": ["content_date_end"],
    "ix_product_eviction": ["eviction_date"],
}
EXPECTED_ATTRIBUTE_INDEXES = {
    f"ix_attribute_{kind}": ["name", f"value_{kind}", "product_id"]
    for kind in ("string", "integer", "double", "datetime", "boolean")
}


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_migrated_schema_matches_orm_metadata(engine: Engine) -> None:
    assert schema_differences(engine) == []


def test_compare_detects_a_missing_index(engine: Engine) -> None:
    # Guard against a comparison that silently compares nothing.
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_product_eviction"))
    differences = schema_differences(engine)
    assert len(differences) == 1
    assert differences[0][0] == "add_index"  # type: ignore[index]
    assert differences[0][1].name == "ix_product_eviction"  # type: ignore[index]


def test_schema_has_the_access_pattern_indexes(engine: Engine) -> None:
    inspector = inspect(engine)
    product_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("product")}
    for name, columns in EXPECTED_INDEXES.items():
        assert product_indexes[name] == columns
    if engine.dialect.name == "postgresql":
        assert product_indexes["ix_product_name_pattern"] == ["name"]
        with engine.connect() as conn:
            definition = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_product_name_pattern'")
            ).scalar_one()
        assert "varchar_pattern_ops" in definition
    else:
        assert "ix_product_name_pattern" not in product_indexes
    attribute_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("product_attribute")}
    assert attribute_indexes == EXPECTED_ATTRIBUTE_INDEXES
    unique = {uq["name"]: uq["column_names"] for uq in inspector.get_unique_constraints("product")}
    assert unique == {"uq_product_name": ["name"]}


def test_upgrade_is_repeatable_and_seeds_the_clock(catalog_url: str) -> None:
    upgrade(catalog_url)
    upgrade(catalog_url)  # already at head: a no-op, not an error
    engine = make_engine(catalog_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(PublicationClock.id, PublicationClock.last_publication_date)).tuples().all()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
        assert rows == [(1, EPOCH)]
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(catalog_url: str) -> None:
    upgrade(catalog_url)
    command.downgrade(alembic_config(catalog_url), "base")
    engine = make_engine(catalog_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(catalog_url)
        assert schema_differences(engine) == []
    finally:
        engine.dispose()

"""Catalog URLs as operators get them: CloudNativePG's `uri` (`postgresql://`) runs on psycopg 3, the driver shipped."""

from __future__ import annotations

from auxip.catalog.migrate import make_engine, with_driver


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    uri = "postgresql://auxip:s3cret@auxip-catalog-rw.auxip-catalog:5432/auxip"
    assert with_driver(uri) == "postgresql+psycopg://auxip:s3cret@auxip-catalog-rw.auxip-catalog:5432/auxip"
    assert with_driver("postgres://a@h/db") == "postgresql+psycopg://a@h/db"
    engine = make_engine(uri)  # no connection is made
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    engine.dispose()


def test_explicit_drivers_and_sqlite_are_kept() -> None:
    assert with_driver("postgresql+psycopg://a@h/db") == "postgresql+psycopg://a@h/db"
    assert with_driver("sqlite:////var/lib/auxip/catalog.db") == "sqlite:////var/lib/auxip/catalog.db"

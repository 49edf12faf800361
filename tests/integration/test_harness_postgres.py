"""The PostgreSQL fixture gives a real, writable PostgreSQL 15 server."""

from __future__ import annotations

import psycopg
import pytest

from auxip_testing.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_select_one(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_server_is_postgresql_15(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    assert row[0].startswith("15")


def test_connected_to_the_auxip_database(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("auxip", postgres.user)


def test_tables_can_be_written_and_read(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("CREATE TEMP TABLE product (name text PRIMARY KEY, size bigint)")
        conn.execute("INSERT INTO product VALUES (%s, %s)", ("S1A_AUX_CAL_V20190228T092500.SAFE", 123456))
        assert conn.execute("SELECT size FROM product WHERE name LIKE 'S1A_AUX_CAL%'").fetchone() == (123456,)


def test_urls_point_at_the_server(postgres: PostgresServer) -> None:
    assert postgres.dsn == f"postgresql://auxip@127.0.0.1:{postgres.port}/auxip"
    assert postgres.sqlalchemy_url.startswith("postgresql+psycopg://auxip@127.0.0.1:")

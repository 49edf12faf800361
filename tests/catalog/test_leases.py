"""Singleton leases: one holder at a time on both databases, taken over after expiry, given back on a clean stop."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from auxip.catalog.leases import hold, release
from auxip.catalog.migrate import alembic_config
from auxip_testing.databases import BACKENDS, migrated_engine, schema_differences

MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from migrated_engine(request, tmp_path, "leases")


def test_migration_0009_creates_the_lease_table(engine: Engine) -> None:
    assert schema_differences(engine, {"singleton_lease"}) == []
    url = engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0008")
    assert "singleton_lease" not in inspect(engine).get_table_names()
    command.upgrade(alembic_config(url), "head")


def test_one_holder_until_it_expires_or_is_released(engine: Engine) -> None:
    assert hold(engine, "eviction", "a", MINUTE, now=T0)
    assert not hold(engine, "eviction", "b", MINUTE, now=T0 + timedelta(seconds=30))
    assert hold(engine, "eviction", "a", MINUTE, now=T0 + timedelta(seconds=50))  # renewed to T0 + 110 s
    assert not hold(engine, "eviction", "b", MINUTE, now=T0 + timedelta(seconds=100))
    assert hold(engine, "eviction", "b", MINUTE, now=T0 + timedelta(seconds=111))  # a died: taken over
    assert not hold(engine, "eviction", "a", MINUTE, now=T0 + timedelta(seconds=112))
    assert hold(engine, "other-job", "a", MINUTE, now=T0 + timedelta(seconds=112))  # leases are per name
    release(engine, "eviction", "a")  # not its holder: changes nothing
    assert not hold(engine, "eviction", "c", MINUTE, now=T0 + timedelta(seconds=113))
    release(engine, "eviction", "b")
    assert hold(engine, "eviction", "c", MINUTE, now=T0 + timedelta(seconds=114))


def test_racing_processes_never_both_take_a_free_lease(engine: Engine) -> None:
    for round_ in range(20):
        name = f"job-{round_}"
        with ThreadPoolExecutor(8) as pool:
            taken = list(pool.map(hold, [engine] * 8, [name] * 8, [f"p{i}" for i in range(8)], [MINUTE] * 8))
        assert taken.count(True) == 1, taken

"""Staged items stay with the staging area that holds their bytes while its processes live, and no longer.

A process that fetched an item holds its staging area's lease (`staging:<node>`); the stages that read the staged
bytes are claimed only there. Once that lease is given back (clean stop) or has run out (a crash: one lease), any
process may claim the item; its stage then finds no bytes and sends it back to be fetched (not tested here: the
scale-out test kills a worker with items staged).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from auxip.catalog.leases import hold, release
from auxip.ingest.models import IngestItem
from auxip.ingest.state import claim, staging_lease, staging_node, utcnow
from auxip_testing.databases import BACKENDS, migrated_engine

LEASE = timedelta(seconds=60)
HOST_A = "host-a:0123456789ab"
HOST_B = "host-b:ba9876543210"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from migrated_engine(request, tmp_path, "staging")


def _staged_item(engine: Engine, staged_on: str | None, name: str = "S1A_OPER_AUX_RESORB.EOF") -> None:
    now = utcnow()
    row = {
        "source": "sftp", "path": f"/out/{name}", "name": name, "version": "1", "size": 10, "is_dir": False,
        "origin_date": now, "discovered_at": now, "updated_at": now, "state": "fetched", "attempts": 0,
        "next_attempt_at": now - timedelta(seconds=1), "staged_on": staged_on, "details": "{}",
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(IngestItem), [row])


def _claimed_by(engine: Engine, node: str) -> list[str]:
    return [item.name for item in claim(engine, "fetched", f"worker-{node}", LEASE, 10, staged_on=node)]


def test_a_live_staging_area_keeps_its_items(engine: Engine) -> None:
    _staged_item(engine, HOST_A)
    assert hold(engine, staging_lease(HOST_A), HOST_A, LEASE)
    assert _claimed_by(engine, HOST_B) == []
    assert _claimed_by(engine, HOST_A) == ["S1A_OPER_AUX_RESORB.EOF"]


def test_items_of_a_dead_staging_area_are_claimable_once_its_lease_ran_out(engine: Engine) -> None:
    _staged_item(engine, HOST_A)
    # Its last renewal was a lease and a second ago: the process died.
    assert hold(engine, staging_lease(HOST_A), HOST_A, LEASE, now=utcnow() - LEASE - timedelta(seconds=1))
    assert _claimed_by(engine, HOST_B) == ["S1A_OPER_AUX_RESORB.EOF"]


def test_a_clean_stop_hands_the_items_over_at_once(engine: Engine) -> None:
    _staged_item(engine, HOST_A)
    assert hold(engine, staging_lease(HOST_A), HOST_A, LEASE)
    release(engine, staging_lease(HOST_A), HOST_A)
    assert _claimed_by(engine, HOST_B) == ["S1A_OPER_AUX_RESORB.EOF"]


def test_items_without_a_staging_area_are_anyones(engine: Engine) -> None:
    _staged_item(engine, None)
    assert hold(engine, staging_lease(HOST_A), HOST_A, LEASE)
    assert _claimed_by(engine, HOST_B) == ["S1A_OPER_AUX_RESORB.EOF"]


def test_the_node_name_fits_its_lease_and_tells_directories_apart(tmp_path: Path) -> None:
    long_directory = tmp_path / ("x" * 200) / "staging"
    node = staging_node(long_directory)
    assert len(staging_lease(node)) <= 64  # the lease table's name column
    assert node != staging_node(tmp_path / "other")
    assert node == staging_node(long_directory / ".." / "staging")

"""The whole pipeline from a local source to publication, with the real clamd: products, quarantine, events."""

from __future__ import annotations

import io
import json
import logging
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from auxip.catalog.migrate import make_engine
from auxip.ingest.eviction import evict_expired
from auxip.ingest.models import IngestItem
from auxip.ingest.quarantine import list_entries, purge, release
from auxip.storage import open_storage
from auxip_testing.clamd import ClamdServer, eicar
from auxip_testing.ingest import (
    md5_of,
    pipeline_config,
    published,
    published_events,
    running_pipeline,
    settled,
    states,
)
from auxip_testing.sample_feed import feed, write_eof, write_safe, write_tgz

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _scanner(clamd: ClamdServer) -> str:
    return f"tcp://{clamd.host}:{clamd.port}"


def _tgz_with(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


async def test_feed_is_published_with_checksums_metadata_and_one_event_each(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inputs = feed(inbox, 25, seed=3, sizes=(10_000, 200_000))
    config = pipeline_config(tmp_path / "data", [{"name": "local", "url": inbox.as_uri()}], _scanner(clamd))
    async with running_pipeline(config) as engine:
        final = await settled(engine, len(inputs))
        products = published(engine)
        events = published_events(engine)

    assert set(final.values()) == {"announced"}
    assert len(products) == len(inputs)
    storage_root = config.data_dir / "products"
    for product in products.values():
        assert product.name.endswith((".EOF.zip", ".SAFE.zip"))
        stored = storage_root / product.storage_key
        assert stored.stat().st_size == product.size
        assert md5_of(stored) == product.md5
    # Exactly one product.published event per product, carrying the catalog's MD5.
    assert sorted(event["ProductName"] for event in events) == sorted(products)
    assert {event["ProductName"]: event["MD5"] for event in events} == {p.name: p.md5 for p in products.values()}
    # Staging is emptied as products are published.
    assert not any((config.staging_dir).rglob("*.EOF*"))


async def test_restart_on_the_same_data_publishes_nothing_twice(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inputs = feed(inbox, 6, seed=4, sizes=(10_000, 50_000))
    config = pipeline_config(tmp_path / "data", [{"name": "local", "url": inbox.as_uri()}], _scanner(clamd))
    async with running_pipeline(config) as engine:
        await settled(engine, len(inputs))
        first = published(engine)
    async with running_pipeline(config) as engine:
        await settled(engine, len(inputs))
        import asyncio

        await asyncio.sleep(1.0)  # several polls and sweeps
        assert published(engine) == first
        assert len(published_events(engine)) == len(inputs)
        assert len(states(engine)) == len(inputs)


async def test_bad_inputs_end_in_quarantine_with_their_reason(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = write_eof(inbox, "AUX_RESORB", "A", T0, T0 - timedelta(hours=3), T0)
    (inbox / "S1A_OPER_AUX_RESORB_OPOD_20261130T110000_V20261130T080000_20261130T110000.EOF").write_bytes(eicar())
    (inbox / "not_a_sentinel_file.EOF").write_text("<xml/>")
    (inbox / "S1B_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF").write_bytes(b"")
    _tgz_with(
        inbox / "S1C_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF.tgz",
        {"../../etc/evil.EOF": b"x"},
    )
    _tgz_with(
        inbox / "S1A_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF.tgz",
        {},
        {"S1A_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF": "/etc/passwd"},
    )
    bomb = "S1D_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF"
    with zipfile.ZipFile(inbox / f"{bomb}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(bomb, bytes(64 * 1024 * 1024))  # 64 MiB of zeros in about 64 KB
    truncated_tgz = write_tgz(write_eof(tmp_path / "t", "AUX_PREORB", "A", T0, T0, T0 + timedelta(days=2)), inbox)
    truncated_tgz.write_bytes(truncated_tgz.read_bytes()[: truncated_tgz.stat().st_size // 2])
    cut = write_eof(tmp_path / "c", "AUX_POEORB", "B", T0, T0 - timedelta(days=1), T0)
    (inbox / cut.name).write_bytes(cut.read_bytes()[:-200])  # the XML ends mid-element
    config = pipeline_config(tmp_path / "data", [{"name": "local", "url": inbox.as_uri()}], _scanner(clamd))
    async with running_pipeline(config) as engine:
        final = await settled(engine, 9)
        products = published(engine)
        entries = list_entries(engine)

    assert list(products) == [good.name + ".zip"]
    assert final[good.name] == "announced"
    reasons = {entry.name: entry.reason for entry in entries}
    assert reasons == {
        "S1A_OPER_AUX_RESORB_OPOD_20261130T110000_V20261130T080000_20261130T110000.EOF": "infected",
        "not_a_sentinel_file.EOF": "bad-name",
        "S1B_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF": "empty",
        "S1C_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF.tgz": "path-traversal",
        "S1A_OPER_AUX_POEORB_OPOD_20261130T100000_V20261129T225942_20261201T005942.EOF.tgz": "link-escape",
        f"{bomb}.zip": "zip-bomb-ratio",
        truncated_tgz.name: "corrupt-archive",
        cut.name: "unreadable-header",
    }
    infected = next(entry for entry in entries if entry.reason == "infected")
    assert infected.signature == "Auxip-Test-EICAR.UNOFFICIAL"
    assert infected.scanner_version is not None
    assert infected.scanner_version.startswith("ClamAV ")
    assert infected.stage == "scan"
    # The refused bytes are kept for forensics.
    assert (config.data_dir / "quarantine" / str(infected.path)).read_bytes() == eicar()


async def test_released_entry_reenters_and_purged_entry_is_deleted(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    safe = write_safe(inbox, "AUX_XYZ", "A", T0, T0 - timedelta(days=1), None)  # a type outside the contract
    (inbox / "junk.bin").write_bytes(b"junk")
    config = pipeline_config(tmp_path / "data", [{"name": "local", "url": inbox.as_uri()}], _scanner(clamd))
    quarantine_dir = config.data_dir / "quarantine"
    async with running_pipeline(config) as engine:
        await settled(engine, 2)
        entries = {entry.name: entry for entry in list_entries(engine)}
        assert {name: entry.reason for name, entry in entries.items()} == {
            safe.name: "unknown-type",
            "junk.bin": "bad-name",
        }
        purge(engine, quarantine_dir, entries["junk.bin"].id, "alice")
        assert not (quarantine_dir / str(entries["junk.bin"].path)).exists()
    # The operator changes the policy, then releases the held SAFE product: it is published.
    relaxed = config.model_copy(update={"ingest": config.ingest.model_copy(update={"unknown_types": "publish"})})
    engine = make_engine(config.catalog_url)
    release(engine, quarantine_dir, config.staging_dir, entries[safe.name].id, "alice")
    engine.dispose()
    async with running_pipeline(relaxed) as engine:
        final = await settled(engine, 2)
        assert final[safe.name] == "announced"
        assert list(published(engine)) == [safe.name + ".zip"]
        assert {entry.name: entry.status for entry in list_entries(engine, None)} == {
            safe.name: "released",
            "junk.bin": "purged",
        }


async def test_clamd_down_files_wait_and_nothing_passes_unscanned(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inputs = feed(inbox, 3, seed=5, sizes=(10_000, 20_000))
    source = [{"name": "local", "url": inbox.as_uri()}]
    from auxip_testing.process import free_port

    down = pipeline_config(
        tmp_path / "data", source, {"url": f"tcp://127.0.0.1:{free_port()}", "connect_timeout_seconds": 0.5}
    )
    async with running_pipeline(down) as engine:
        import asyncio

        await asyncio.sleep(2.0)
        assert set(states(engine).values()) == {"fetched"}
        assert published(engine) == {}
    up = pipeline_config(tmp_path / "data", source, _scanner(clamd))
    async with running_pipeline(up) as engine:
        final = await settled(engine, len(inputs))
        assert set(final.values()) == {"announced"}


async def test_eviction_removes_expired_products_from_catalog_and_storage(tmp_path: Path, clamd: ClamdServer) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_eof(inbox, "AUX_RESORB", "A", T0, T0 - timedelta(hours=3), T0)
    write_eof(inbox, "AUX_RESORB", "B", T0, T0 - timedelta(hours=3), T0)
    write_eof(inbox, "AUX_POEORB", "A", T0, T0 - timedelta(days=1), T0)
    write_safe(inbox, "AUX_CAL", "A", T0, T0 - timedelta(days=1), None)
    config = pipeline_config(
        tmp_path / "data",
        [{"name": "local", "url": inbox.as_uri()}],
        _scanner(clamd),
        retention={"default_days": 30, "per_type": {"AUX_RESORB": 1}},
    )
    async with running_pipeline(config) as engine:
        await settled(engine, 4)
        before = published(engine)
        storage = open_storage(config.storage_url)
        evicted = await evict_expired(engine, storage, now=datetime.now(UTC) + timedelta(days=2))
        after = published(engine)
    assert len(evicted) == 2
    for name, product in after.items():
        stored = config.data_dir / "products" / product.storage_key
        assert product.evicted == (name in evicted)
        assert stored.exists() == (name not in evicted)
        assert ("AUX_RESORB" in name) == (name in evicted)
    assert set(after) == set(before)


async def test_disabled_scanner_is_explicit_and_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inbox = tmp_path / "inbox"
    file = write_eof(inbox, "AUX_RESORB", "A", T0, T0 - timedelta(hours=3), T0)
    config = pipeline_config(tmp_path / "data", [{"name": "local", "url": inbox.as_uri()}], "disabled")
    with caplog.at_level(logging.WARNING, logger="auxip.ingest"):
        async with running_pipeline(config) as engine:
            await settled(engine, 1)
            with engine.connect() as conn:
                details = conn.execute(select(IngestItem.details)).scalar_one()
    assert "ANTIVIRUS SCANNING IS DISABLED" in caplog.text
    assert json.loads(details)["scan"] == {"verdict": "not scanned: scanner disabled"}
    assert list(published(make_engine(config.catalog_url))) == [f"{file.name}.zip"]

"""The local directory source: listing rules, byte-exact copies, vanished and truncated files, inotify, the throttle."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone
from auxip.ingest.sources.credentials import NONE
from auxip.ingest.sources.local import LocalSource
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import UNLIMITED, Throttle

AUX = "S1A_AUX_PP1_V20190228T092500_G20190227T095512.SAFE"
EOF_NAME = "S1A_OPER_AUX_RESORB_OPOD_20240101T001234_V20231231T210000_20240101T010000.EOF"
HOUR_AGO = time.time() - 3600


def source(root: Path, throttle: Throttle = UNLIMITED, **settings: Any) -> LocalSource:
    values: dict[str, Any] = {"name": "local", "url": f"file://{root}", "settle_seconds": 60, **settings}
    return LocalSource(SourceSettings(**values), NONE, throttle)


def write(path: Path, data: bytes, mtime: float | None = HOUR_AGO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def safe_product(root: Path) -> Path:
    folder = root / AUX
    write(folder / "manifest.safe", b"<manifest/>")
    write(folder / "data" / "s1a-aux-pp1.xml", os.urandom(3000))
    write(folder / "support" / "s1-object-types.xsd", b"<xsd/>")
    os.utime(folder, (HOUR_AGO, HOUR_AGO))
    for sub in ("data", "support"):
        os.utime(folder / sub, (HOUR_AGO, HOUR_AGO))
    return folder


async def listed(src: LocalSource) -> dict[str, RemoteFile]:
    return {entry.name: entry async for entry in src.list()}


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


async def test_lists_settled_files_and_safe_folders_only(tmp_path: Path) -> None:
    write(tmp_path / EOF_NAME, b"x" * 1234)
    safe_product(tmp_path)
    for skipped in ("upload.EOF.part", "upload.tmp", "upload.filepart", "upload.EOF~", ".hidden.EOF"):
        write(tmp_path / skipped, b"partial")
    write(tmp_path / "plain_folder" / "inside.EOF", b"ignored: not a product folder")
    write(tmp_path / "fresh.EOF", b"just written", mtime=None)

    entries = await listed(source(tmp_path))

    assert sorted(entries) == sorted([EOF_NAME, AUX])
    plain, safe = entries[EOF_NAME], entries[AUX]
    assert (plain.path, plain.size, plain.is_dir) == (EOF_NAME, 1234, False)
    assert plain.version == f"1234:{(tmp_path / EOF_NAME).stat().st_mtime_ns}"
    assert (safe.path, safe.size, safe.is_dir) == (AUX, len(b"<manifest/>") + 3000 + len(b"<xsd/>"), True)
    assert safe.modified is not None
    assert abs(safe.modified.timestamp() - HOUR_AGO) < 1
    # Without a settle delay the fresh file counts too.
    assert "fresh.EOF" in await listed(source(tmp_path, settle_seconds=0))


async def test_safe_folder_version_follows_its_files_and_waits_for_uploads_inside(tmp_path: Path) -> None:
    folder = safe_product(tmp_path)
    src = source(tmp_path, settle_seconds=0)
    before = (await listed(src))[AUX].version
    write(folder / "data" / "s1a-aux-pp1.xml", os.urandom(3000), mtime=HOUR_AGO + 5)
    after = (await listed(src))[AUX].version
    assert after != before
    write(folder / "data" / "extra.xml.part", b"uploading")
    assert AUX not in await listed(src)


async def test_include_and_ignore_before(tmp_path: Path) -> None:
    write(tmp_path / EOF_NAME, b"eof")
    write(tmp_path / "S1B_OTHER.EOF", b"old", mtime=HOUR_AGO - 86400)
    assert list(await listed(source(tmp_path, include=[r"^S1A_"]))) == [EOF_NAME]
    cutoff = datetime.fromtimestamp(HOUR_AGO - 60, UTC)
    assert list(await listed(source(tmp_path, ignore_before=cutoff))) == [EOF_NAME]


async def test_fetch_file_and_safe_folder_byte_identical(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    payload = os.urandom(5 * 1024 * 1024 + 17)
    write(remote / EOF_NAME, payload)
    folder = safe_product(remote)
    src = source(remote)
    entries = await listed(src)

    assert await src.fetch(entries[EOF_NAME], tmp_path / "out.EOF") == len(payload)
    assert (tmp_path / "out.EOF").read_bytes() == payload
    staged = tmp_path / "staged" / AUX
    assert await src.fetch(entries[AUX], staged) == entries[AUX].size
    assert tree(staged) == tree(folder)


async def test_vanished_or_truncated_entry_is_gone_and_leaves_nothing(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write(remote / EOF_NAME, os.urandom(4096))
    folder = safe_product(remote)
    src = source(remote)
    entries = await listed(src)

    (remote / EOF_NAME).unlink()
    with pytest.raises(RemoteFileGone, match="vanished"):
        await src.fetch(entries[EOF_NAME], tmp_path / "a.EOF")
    assert not (tmp_path / "a.EOF").exists()

    write(remote / EOF_NAME, os.urandom(1000))
    with pytest.raises(RemoteFileGone, match="1000 bytes transferred but 4096 listed"):
        await src.fetch(entries[EOF_NAME], tmp_path / "b.EOF")
    assert not (tmp_path / "b.EOF").exists()

    (folder / "support" / "s1-object-types.xsd").unlink()
    with pytest.raises(RemoteFileGone, match="changed or vanished"):
        await src.fetch(entries[AUX], tmp_path / "c" / AUX)
    assert not (tmp_path / "c" / AUX).exists()


async def test_bandwidth_limit_is_applied(tmp_path: Path) -> None:
    payload = os.urandom(2 * 1024 * 1024)
    write(tmp_path / EOF_NAME, payload)
    rate = 2 * 1024 * 1024
    src = source(tmp_path, Throttle(rate), bandwidth_limit=rate)
    entry = (await listed(src))[EOF_NAME]
    started = time.monotonic()
    assert await src.fetch(entry, tmp_path / "out") == len(payload)
    # One second of budget minus the token bucket's initial quarter-second burst.
    assert time.monotonic() - started >= 0.7
    assert (tmp_path / "out").read_bytes() == payload


async def test_inotify_close_makes_a_file_eligible_at_once(tmp_path: Path) -> None:
    src = source(tmp_path, settle_seconds=3600)
    changes = src.changes()
    waiting = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.1)  # let the watch be set up before the write
    write(tmp_path / "ignored.EOF.part", b"temporary names do not wake the pipeline", mtime=None)
    write(tmp_path / EOF_NAME, b"closed after write", mtime=None)
    await asyncio.wait_for(waiting, 1.0)
    entries = await listed(src)
    assert list(entries) == [EOF_NAME]
    assert entries[EOF_NAME].size == len(b"closed after write")

    # A rename into the directory (the producers' upload convention) counts the same.
    write(tmp_path / "upload.part", b"renamed", mtime=None)
    waiting = asyncio.ensure_future(anext(changes))
    (tmp_path / "upload.part").rename(tmp_path / "S1A_RENAMED.EOF")
    await asyncio.wait_for(waiting, 1.0)
    assert sorted(await listed(src)) == sorted([EOF_NAME, "S1A_RENAMED.EOF"])
    await changes.aclose()

    # Written while nobody watched: only settling makes it complete.
    write(tmp_path / "S1A_UNSEEN.EOF", b"x", mtime=None)
    assert "S1A_UNSEEN.EOF" not in await listed(src)


async def test_changes_never_yields_without_a_watch(tmp_path: Path) -> None:
    changes = source(tmp_path / "missing").changes()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(changes), 0.3)


def test_rejects_non_local_urls() -> None:
    with pytest.raises(PermanentSourceError, match="file:///absolute/dir"):
        LocalSource(SourceSettings(name="x", url="file://otherhost/dir"), NONE, UNLIMITED)

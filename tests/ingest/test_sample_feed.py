"""The sample input generator: what it writes parses and yields metadata, stays within the sizes asked, follows an
orbit-dominated mix, is reproducible per seed, and never shows a partial entry."""

from __future__ import annotations

import hashlib
import tarfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auxip.ingest.metadata import extract_metadata
from auxip.ingest.naming import parse_name
from auxip_testing.sample_feed import ARCHIVE_MTIME, feed, input_size, write_eof, write_safe, write_tar, write_tgz

CREATED = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
START = CREATED - timedelta(hours=3)


def digest(path: Path) -> str:
    """MD5 over an entry: a file's bytes, or a directory's relative paths and bytes."""
    md5 = hashlib.md5(usedforsecurity=False)
    files = sorted(item for item in path.rglob("*") if item.is_file()) if path.is_dir() else [path]
    for item in files:
        md5.update(item.relative_to(path.parent).as_posix().encode() + b"\0" + item.read_bytes())
    return md5.hexdigest()


def unpack(path: Path, scratch: Path) -> Path:
    with tarfile.open(path) as tar:
        tar.extractall(scratch, filter="data")
    parsed = parse_name(path.name)
    return scratch / f"{parsed.stem}.{parsed.kind}"


def test_feed_inputs_parse_and_give_metadata_within_sizes(tmp_path: Path) -> None:
    paths = feed(tmp_path / "source", 80, seed=3, sizes=(10_000, 200_000))
    assert len(paths) == 80
    assert len({path.name for path in paths}) == 80
    assert sorted(p.name for p in (tmp_path / "source").iterdir()) == sorted(p.name for p in paths)
    kinds: Counter[str] = Counter()
    for path in paths:
        parsed = parse_name(path.name)
        assert parsed.known_type
        assert 10_000 <= input_size(path) <= 200_000, path.name
        content = path if parsed.container is None else unpack(path, tmp_path / "unpacked" / path.name)
        metadata = extract_metadata(parsed, content)
        assert metadata.content_date_start == parsed.validity_start
        assert metadata.attributes["productType"] == parsed.product_type
        kinds[parsed.container or parsed.kind] += 1
        kinds["orbit" if "ORB" in parsed.product_type else "other"] += 1
    assert kinds["EOF"] > kinds["SAFE"] > 0
    assert kinds["tgz"] > 0
    assert kinds["orbit"] > kinds["other"]


def test_feed_is_reproducible_per_seed(tmp_path: Path) -> None:
    first = feed(tmp_path / "one", 30, seed=7, sizes=(10_000, 50_000))
    second = feed(tmp_path / "two", 30, seed=7, sizes=(10_000, 50_000))
    other = feed(tmp_path / "three", 30, seed=8, sizes=(10_000, 50_000))
    assert [p.name for p in first] == [p.name for p in second]
    assert [digest(p) for p in first] == [digest(p) for p in second]
    assert {p.name for p in first}.isdisjoint(p.name for p in other)


def test_feed_start_and_no_partial_entries(tmp_path: Path) -> None:
    start = datetime(2024, 6, 1, tzinfo=UTC)
    paths = feed(tmp_path, 20, start=start, sizes=(10_000, 30_000))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    created = [parse_name(p.name).created for p in paths]
    assert all(start <= value < start + timedelta(minutes=40) for value in created if value is not None)


def test_feed_refuses_impossible_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sizes"):
        feed(tmp_path, 1, sizes=(0, 10))
    with pytest.raises(ValueError, match=r"within 100\.\.200"):
        feed(tmp_path, 5, sizes=(100, 200))


def test_eof_size_grows_with_osvs(tmp_path: Path) -> None:
    small = write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, START + timedelta(hours=3), osv_count=10)
    large = write_eof(tmp_path / "b", "AUX_RESORB", "A", CREATED, START, START + timedelta(hours=3), osv_count=110)
    text = large.read_text()
    assert text.count("<OSV>") == 110
    assert '<List_of_OSVs count="110">' in text
    per_osv = (large.stat().st_size - small.stat().st_size) / 100
    assert 400 < per_osv < 500
    # OSVs every 10 s from the validity start, with TAI 37 s ahead of UTC.
    assert "<UTC>UTC=2021-03-04T02:06:17.000000</UTC>" in text
    assert "<TAI>TAI=2021-03-04T02:06:54.000000</TAI>" in text


def test_safe_manifest_describes_its_payload(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_WAV", None, CREATED, START, START + timedelta(hours=6), payload_bytes=12_345)
    (payload,) = (path / "data").iterdir()
    data = payload.read_bytes()
    assert len(data) == 12_345
    assert data.startswith(b"\x89HDF\r\n\x1a\n")
    manifest = (path / "manifest.safe").read_text()
    assert f'size="{len(data)}"' in manifest
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() in manifest
    assert f'href="./data/{payload.name}"' in manifest
    xml = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=5_000)
    (xml_payload,) = (xml / "data").iterdir()
    assert xml_payload.read_bytes().startswith(b"<?xml")
    assert xml_payload.stat().st_size == 5_000


def test_writers_refuse_to_replace(tmp_path: Path) -> None:
    write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, START + timedelta(hours=3), osv_count=1)
    with pytest.raises(FileExistsError):
        write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, START + timedelta(hours=3), osv_count=1)
    write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=1)
    with pytest.raises(FileExistsError):
        write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("AUX_CAL", "A"), "10 characters"),
        (("AUX_RESORB", "E"), "unit"),
    ],
)
def test_eof_writer_refuses_bad_arguments(tmp_path: Path, arguments: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_eof(tmp_path, *arguments, CREATED, START, START, osv_count=1)


def test_archives_are_reproducible_and_hold_the_product(tmp_path: Path) -> None:
    safe = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=2_000)
    eof = write_eof(tmp_path, "AUX_RESORB", "B", CREATED, START, START + timedelta(hours=3), osv_count=3)
    first = write_tgz(safe, tmp_path / "a")
    again = write_tgz(safe, tmp_path / "b")
    assert first.name == f"{safe.name}.tgz"
    assert first.read_bytes() == again.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        safe.name,
        f"{safe.name}/data",
        f"{safe.name}/data/{next((safe / 'data').iterdir()).name}",
        f"{safe.name}/manifest.safe",
    ]
    assert {m.mtime for m in members} == {int(ARCHIVE_MTIME.timestamp())}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}

    bare = write_tgz(eof, tmp_path / "a", name=f"{eof.name.removesuffix('.EOF')}.TGZ")
    assert parse_name(bare.name).kind == "EOF"
    with tarfile.open(bare) as tar:
        assert tar.getnames() == [eof.name]
        member = tar.extractfile(eof.name)
        assert member is not None
        assert member.read() == eof.read_bytes()

    plain = write_tar(safe, tmp_path / "a")
    assert plain.name == f"{safe.name}.tar"
    with tarfile.open(plain, mode="r:") as tar:
        manifest = tar.extractfile(f"{safe.name}/manifest.safe")
        assert manifest is not None
        assert manifest.read() == (safe / "manifest.safe").read_bytes()
    assert not [p.name for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_ten_thousand_small_inputs_have_distinct_names(tmp_path: Path) -> None:
    # The benchmark's full small set; how long generating it takes is printed there, not asserted (machines vary).
    began = time.monotonic()
    paths = feed(tmp_path, 10_000, sizes=(10_000, 20_000))
    print(f"10,000 inputs generated in {time.monotonic() - began:.1f} s")
    assert len({p.name for p in paths}) == 10_000

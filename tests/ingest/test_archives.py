"""Archive safety: hostile archives built here byte by byte are refused with the exact reason code."""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from auxip.ingest.archives import (
    ArchiveLimits,
    UnsafeArchive,
    extract_archive,
    inspect_archive,
)

STEM = "S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942"
SAFE_STEM = "S1A_AUX_CAL_V20140908T000000_G20190626T100201"
EOF_BODY = b'<?xml version="1.0"?>\n<Earth_Explorer_File>' + b"<OSV/>" * 5000 + b"</Earth_Explorer_File>\n"
LIMITS = ArchiveLimits()
MIB = 1 << 20


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], compressed: bool = False) -> Path:
    with tarfile.open(path, "w:gz" if compressed else "w") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _local(name: str, data: bytes, method: int, crc: int, size: int) -> bytes:
    raw = name.encode()
    header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
    return header + raw + data


def _central(name: str, method: int, crc: int, compressed: int, size: int, offset: int) -> bytes:
    raw = name.encode()
    fields = (0x02014B50, 0x314, 20, 0, method, 0, 0x21, crc, compressed, size, len(raw), 0, 0, 0, 0, 0o100644 << 16)
    return struct.pack("<IHHHHHHIIIHHHHHII", *fields, offset) + raw


def _end(count: int, directory: bytes, offset: int) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), offset, 0)


def _zeros_deflate(mebibytes: int) -> bytes:
    """A raw deflate stream of `mebibytes` MiB of zeros, built from one compressed MiB repeated (cheap to make)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, history reset
    return block * mebibytes + compressor.flush()


def _code(path: Path, container: str, limits: ArchiveLimits = LIMITS) -> str:
    with pytest.raises(UnsafeArchive) as caught:
        inspect_archive(path, container, limits)
    return caught.value.code


def _extract_code(path: Path, container: str, destination: Path, limits: ArchiveLimits = LIMITS) -> str:
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(path, container, destination, limits, expected_name=f"{STEM}.EOF", expected_dir=False)
    assert not (destination / f"{STEM}.EOF").exists()
    return caught.value.code


@pytest.mark.parametrize("compressed", [False, True], ids=["tar", "tgz"])
@pytest.mark.parametrize(
    ("member", "code"),
    [
        (_member("../x"), "path-traversal"),
        (_member(f"{STEM}.EOF/../../x"), "path-traversal"),
        (_member("/etc/x"), "absolute-path"),
        (_member("x", tarfile.SYMTYPE, "/etc/passwd"), "link-escape"),
        (_member("x", tarfile.SYMTYPE, "inside"), "link-escape"),
        (_member("x", tarfile.LNKTYPE, "/etc/passwd"), "link-escape"),
        (_member("x", tarfile.FIFOTYPE), "special-file"),
        (_member("x", tarfile.CHRTYPE), "special-file"),
        (_member("x", tarfile.BLKTYPE), "special-file"),
    ],
    ids=lambda value: getattr(value, "name", value),
)
def test_hostile_tar_entries_are_refused_before_writing(
    tmp_path: Path, compressed: bool, member: tarfile.TarInfo, code: str
) -> None:
    data = b"payload" if member.type == tarfile.REGTYPE else None
    archive = _tar(tmp_path / "in.tar", [(member, data)], compressed)
    container = "tgz" if compressed else "tar"
    assert _code(archive, container) == code
    assert _extract_code(archive, container, tmp_path / "out") == code
    assert not (tmp_path / "x").exists()
    assert not Path("/etc/x").exists()


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ("../x", "path-traversal"),
        ("..\\x", "path-traversal"),
        ("/etc/x", "absolute-path"),
        ("C:/x", "absolute-path"),
        (_zip_info("x", stat.S_IFLNK | 0o777), "link-escape"),
        (_zip_info("x", stat.S_IFIFO | 0o644), "special-file"),
        (_zip_info("x", stat.S_IFCHR | 0o644), "special-file"),
    ],
    ids=str,
)
def test_hostile_zip_entries_are_refused(tmp_path: Path, entry: str | zipfile.ZipInfo, code: str) -> None:
    archive = _zip(tmp_path / "in.zip", [(entry, b"/etc/passwd")])
    assert _code(archive, "zip") == code
    assert _extract_code(archive, "zip", tmp_path / "out") == code
    assert not (tmp_path / "x").exists()


def test_encrypted_zip_entry_is_unreadable(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "in.zip", [(f"{STEM}.EOF", EOF_BODY)])
    data = bytearray(archive.read_bytes())
    data[6] |= 0x1  # the encryption flag, in the local header and in the central directory (zipfile never sets it)
    data[data.index(b"PK\x01\x02") + 8] |= 0x1
    archive.write_bytes(data)
    assert _code(archive, "zip") == "corrupt-archive"


def test_zip_bomb_of_2_gib_declared_is_refused_before_decompressing(tmp_path: Path) -> None:
    name = f"{STEM}.EOF"
    data = _zeros_deflate(2048)
    local = _local(name, data, zipfile.ZIP_DEFLATED, 0, 2048 * MIB)
    directory = _central(name, zipfile.ZIP_DEFLATED, 0, len(data), 2048 * MIB, 0)
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(local + directory + _end(1, directory, len(local)))
    assert bomb.stat().st_size < 4 * MIB

    assert _code(bomb, "zip") == "zip-bomb-ratio"
    assert _extract_code(bomb, "zip", tmp_path / "out") == "zip-bomb-ratio"
    assert _code(bomb, "zip", ArchiveLimits(max_total_size=1 << 30)) == "zip-bomb-size"
    # The per-entry ratio alone catches it too.
    assert _code(bomb, "zip", ArchiveLimits(max_ratio=1e9)) == "zip-bomb-ratio"


def _liar(path: Path, crc: int) -> Path:
    """A zip declaring 1 KiB for an entry whose data expands to 16 MiB."""
    name = f"{STEM}.EOF"
    data = _zeros_deflate(16)
    local = _local(name, data, zipfile.ZIP_DEFLATED, crc, 1024)
    directory = _central(name, zipfile.ZIP_DEFLATED, crc, len(data), 1024, 0)
    path.write_bytes(local + directory + _end(1, directory, len(local)))
    return path


def test_zip_whose_sizes_lie_never_expands_past_its_declared_size(tmp_path: Path) -> None:
    crc_of_all = zlib.crc32(bytes(16 * MIB))
    assert _extract_code(_liar(tmp_path / "liar.zip", crc_of_all), "zip", tmp_path / "out") == "corrupt-archive"
    # Even with a CRC that matches the declared part, nothing past the declared size is ever produced.
    liar = _liar(tmp_path / "liar2.zip", zlib.crc32(bytes(1024)))
    top = extract_archive(liar, "zip", tmp_path / "out2", LIMITS, expected_name=f"{STEM}.EOF", expected_dir=False)
    assert top.stat().st_size == 1024


def test_overlapping_zip_entries_are_a_bomb(tmp_path: Path) -> None:
    data = zlib.compress(EOF_BODY)[2:-4]
    crc = zlib.crc32(EOF_BODY)
    local = _local("a", data, zipfile.ZIP_DEFLATED, crc, len(EOF_BODY))
    directory = b"".join(_central(name, zipfile.ZIP_DEFLATED, crc, len(data), len(EOF_BODY), 0) for name in "ab")
    archive = tmp_path / "overlap.zip"
    archive.write_bytes(local + directory + _end(2, directory, len(local)))
    assert _code(archive, "zip") == "zip-bomb-ratio"


def _gzip_of_zeros(path: Path, mebibytes: int) -> Path:
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    path.write_bytes(header + _zeros_deflate(mebibytes) + struct.pack("<II", 0, 0))
    return path


def test_gzip_bomb_is_stopped_on_the_decompressed_stream(tmp_path: Path) -> None:
    bomb = _gzip_of_zeros(tmp_path / f"{STEM}.EOF.gz", 1024)
    assert bomb.stat().st_size < 2 * MIB
    assert _code(bomb, "gz") == "zip-bomb-ratio"
    small = ArchiveLimits(max_total_size=8 * MIB, max_ratio=1e9)
    assert _extract_code(bomb, "gz", tmp_path / "out", small) == "zip-bomb-size"


def test_tgz_declaring_a_huge_member_is_refused_at_its_header(tmp_path: Path) -> None:
    header = _member(f"{STEM}.EOF")
    header.size = 1 << 30
    bomb = tmp_path / "bomb.tgz"
    bomb.write_bytes(gzip.compress(header.tobuf() + bytes(MIB)))
    assert _code(bomb, "tgz") == "zip-bomb-ratio"
    assert _code(bomb, "tgz", ArchiveLimits(max_total_size=100 * MIB, max_ratio=1e9)) == "zip-bomb-size"


def _valid_eof_tar(path: Path, compressed: bool) -> Path:
    return _tar(path, [(_member(f"{STEM}.EOF"), EOF_BODY), (_member("second"), b"x")], compressed)


def test_truncated_archives_are_corrupt(tmp_path: Path) -> None:
    zipped = _zip(tmp_path / "in.zip", [(f"{STEM}.EOF", EOF_BODY)]).read_bytes()
    (tmp_path / "cut.zip").write_bytes(zipped[: len(zipped) // 2])
    assert _code(tmp_path / "cut.zip", "zip") == "corrupt-archive"

    tgz = _valid_eof_tar(tmp_path / "in.tgz", compressed=True).read_bytes()
    for cut in (len(tgz) // 2, len(tgz) - 4):  # in the data; only the gzip trailer missing
        (tmp_path / "cut.tgz").write_bytes(tgz[:cut])
        assert _code(tmp_path / "cut.tgz", "tgz") == "corrupt-archive"

    tar = _valid_eof_tar(tmp_path / "in.tar", compressed=False).read_bytes()
    first_member = 512 + (len(EOF_BODY) + 511) // 512 * 512
    for cut in (first_member, first_member + 100):  # at a header boundary (no end block); inside a header
        (tmp_path / "cut.tar").write_bytes(tar[:cut])
        assert _code(tmp_path / "cut.tar", "tar") == "corrupt-archive"


def test_tar_with_a_garbled_header_after_the_first_member_is_corrupt(tmp_path: Path) -> None:
    tar = bytearray(_valid_eof_tar(tmp_path / "in.tar", compressed=False).read_bytes())
    tar[512 + (len(EOF_BODY) + 511) // 512 * 512] ^= 0xFF  # the second header's name: its checksum no longer matches
    (tmp_path / "bad.tar").write_bytes(tar)
    assert _code(tmp_path / "bad.tar", "tar") == "corrupt-archive"


def test_zip_with_a_bad_crc_is_corrupt(tmp_path: Path) -> None:
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as writer:
        writer.writestr(f"{STEM}.EOF", EOF_BODY)
    data = bytearray(archive.read_bytes())
    data[data.index(b"<OSV/>")] ^= 0x01
    archive.write_bytes(data)
    assert _code(archive, "zip") == "corrupt-archive"
    assert _extract_code(archive, "zip", tmp_path / "out") == "corrupt-archive"


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    name = f"{STEM}.EOF"
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = _zip(tmp_path / "twice.zip", [(name, b"a"), (name, b"b")])
    assert _code(twice, "zip") == "duplicate-entry"
    assert _code(_tar(tmp_path / "t.tar", [(_member(name), b"a"), (_member(f"./{name}"), b"b")]), "tar") == (
        "duplicate-entry"
    )
    file_and_dir = _zip(tmp_path / "both.zip", [("a", b"file"), ("a/b", b"file below it")])
    assert _code(file_and_dir, "zip") == "duplicate-entry"


def test_too_many_entries(tmp_path: Path) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [(f"d/{index}", b"x") for index in range(4)]
    assert _code(_zip(tmp_path / "in.zip", entries), "zip", ArchiveLimits(max_entries=3)) == "too-many-entries"
    tar = _tar(tmp_path / "in.tar", [(_member(f"d/{index}"), b"x") for index in range(4)])
    assert _code(tar, "tar", ArchiveLimits(max_entries=3)) == "too-many-entries"


def test_empty_archives(tmp_path: Path) -> None:
    assert _code(_zip(tmp_path / "in.zip", []), "zip") == "empty-archive"
    assert _code(_tar(tmp_path / "in.tar", []), "tar") == "empty-archive"
    assert _code(_tar(tmp_path / "in.tgz", [], compressed=True), "tgz") == "empty-archive"
    assert _code(_zip(tmp_path / "dirs.zip", [(f"{SAFE_STEM}.SAFE/", b"")]), "zip") == "empty-archive"
    (tmp_path / "in.gz").write_bytes(gzip.compress(b""))
    assert _code(tmp_path / "in.gz", "gz") == "empty-archive"
    (tmp_path / "nothing").write_bytes(b"")
    assert {_code(tmp_path / "nothing", container) for container in ("zip", "tar", "tgz", "gz")} == {"empty-archive"}


@pytest.mark.parametrize("container", ["zip", "tar", "tgz", "gz"])
def test_random_bytes_are_not_an_archive(tmp_path: Path, container: str) -> None:
    noise = tmp_path / "noise"
    noise.write_bytes(os.urandom(64 * 1024))
    assert _code(noise, container) == "corrupt-archive"


@pytest.mark.parametrize("container", ["zip", "tar", "tgz", "gz"])
def test_valid_eof_archives_extract(tmp_path: Path, container: str) -> None:
    name = f"{STEM}.EOF"
    archive = tmp_path / f"{name}.{container}"
    if container == "zip":
        _zip(archive, [(name, EOF_BODY)])
    elif container == "gz":
        archive.write_bytes(gzip.compress(EOF_BODY))
    else:
        info = _member(f"./{name}")
        info.mode = 0o755  # an executable bit from the source is not kept
        _tar(archive, [(info, EOF_BODY)], compressed=container == "tgz")

    report = inspect_archive(archive, container, LIMITS)
    assert report.total_size == len(EOF_BODY)
    assert [(entry.path, entry.is_dir, entry.size) for entry in report.entries][-1] == (
        name if container != "gz" else archive.name.removesuffix(".gz"),
        False,
        len(EOF_BODY),
    )
    top = extract_archive(archive, container, tmp_path / "out", LIMITS, expected_name=name, expected_dir=False)
    assert top == tmp_path / "out" / name
    assert top.read_bytes() == EOF_BODY
    assert stat.S_IMODE(top.stat().st_mode) & 0o111 == 0
    assert os.listdir(tmp_path / "out") == [name]


def _safe_tree(root: Path) -> dict[str, bytes]:
    files = {
        "manifest.safe": b"<xfdu/>",
        "data/s1a-aux-cal.xml": EOF_BODY,
        "support/s1-aux-cal.xsd": b"<xsd/>",
    }
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    (root / "data" / "s1a-aux-cal.xml").chmod(0o755)
    return files


@pytest.mark.parametrize("container", ["zip", "tar", "tgz"])
def test_valid_safe_archives_extract(tmp_path: Path, container: str) -> None:
    name = f"{SAFE_STEM}.SAFE"
    files = _safe_tree(tmp_path / "src" / name)
    archive = tmp_path / f"in.{container}"
    if container == "zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writer:
            for relative in files:  # no directory entries: they are implied
                writer.write(tmp_path / "src" / name / relative, f"{name}/{relative}")
    else:
        with tarfile.open(archive, "w:gz" if container == "tgz" else "w") as writer:
            writer.add(tmp_path / "src" / name, name)

    top = extract_archive(archive, container, tmp_path / "out", LIMITS, expected_name=name, expected_dir=True)
    assert top.is_dir()
    extracted = {
        path.relative_to(top).as_posix(): path.read_bytes() for path in sorted(top.rglob("*")) if path.is_file()
    }
    assert extracted == files
    assert all(stat.S_IMODE(path.stat().st_mode) & 0o111 == 0 for path in top.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    ("entries", "expected_dir"),
    [
        ([(f"{STEM}.EOF", EOF_BODY), ("README", b"x")], False),  # a second top-level entry
        ([(f"folder/{STEM}.EOF", EOF_BODY)], False),  # nested
        ([(f"{STEM}.EOF.txt", EOF_BODY)], False),  # another name
        ([(f"{STEM}.EOF", EOF_BODY)], True),  # a file where the SAFE directory is expected
        ([(f"{STEM}.EOF/manifest.safe", EOF_BODY)], False),  # a directory where the EOF file is expected
    ],
)
def test_unexpected_layout(
    tmp_path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], expected_dir: bool
) -> None:
    archive = _zip(tmp_path / "in.zip", entries)
    destination = tmp_path / "out"
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, "zip", destination, LIMITS, expected_name=f"{STEM}.EOF", expected_dir=expected_dir)
    assert caught.value.code == "unexpected-layout"
    assert not destination.exists() or os.listdir(destination) == []


def test_a_gzip_cannot_hold_a_safe_directory(tmp_path: Path) -> None:
    (tmp_path / "in.gz").write_bytes(gzip.compress(EOF_BODY))
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(tmp_path / "in.gz", "gz", tmp_path / "out", LIMITS, expected_name="x.SAFE", expected_dir=True)
    assert caught.value.code == "unexpected-layout"


def test_extraction_never_reuses_an_existing_top_level_entry(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "in.zip", [(f"{STEM}.EOF", EOF_BODY)])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / f"{STEM}.EOF").symlink_to("/etc/passwd")
    with pytest.raises(FileExistsError):
        extract_archive(archive, "zip", tmp_path / "out", LIMITS, expected_name=f"{STEM}.EOF", expected_dir=False)


def test_unknown_container_and_bad_limits(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "in.zip", [(f"{STEM}.EOF", EOF_BODY)])
    with pytest.raises(ValueError, match="unknown container"):
        inspect_archive(archive, "rar", LIMITS)
    with pytest.raises(ValueError, match="max_ratio"):
        ArchiveLimits(max_ratio=0)
    with pytest.raises(ValueError, match="extra"):
        ArchiveLimits.model_validate({"max_size": 1})

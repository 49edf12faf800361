"""The S1PDGS transformation and the one-pass checksums: published bytes, names, digests, determinism, rules."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from auxip.ingest.archives import ArchiveLimits, UnsafeArchive
from auxip.ingest.checksums import HashingWriter, file_digests
from auxip.ingest.transform import DEFAULT_RULES, Transformed, TransformRule, TransformRules, transform

EOF_STEM = "S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942"
SAFE_STEM = "S1A_AUX_CAL_V20140908T000000_G20190626T100201"
# Several deflate blocks of 1 MiB, so the parallel path is exercised.
EOF_BODY = b"".join(b"<OSV><X>%d.125</X><VX>%d.5</VX></OSV>\n" % (i * 7919, i * 104729) for i in range(60_000))
RULE = TransformRule(product_types=["*"])
LIMITS = ArchiveLimits()
UNZIP = shutil.which("unzip")


def _hashlib(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {"MD5": hashlib.md5(data, usedforsecurity=False).hexdigest(), "SHA256": hashlib.sha256(data).hexdigest()}


def _unzip_test(path: Path) -> None:
    if UNZIP is not None:
        result = subprocess.run([UNZIP, "-t", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No errors detected" in result.stdout


def _eof(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{EOF_STEM}.EOF"
    path.write_bytes(EOF_BODY)
    return path


def _safe(directory: Path) -> Path:
    root = directory / f"{SAFE_STEM}.SAFE"
    for relative, data in {
        "manifest.safe": b"<xfdu/>",
        "data/s1a-aux-cal.xml": EOF_BODY,
        "data/a-first.xml": b"<a/>",
        "support/s1-aux-cal.xsd": b"<xsd/>",
        "data.txt": b"sorted after data/",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    (root / "empty").mkdir()
    return root


def _run(source: Path, kind: str, container: str | None, work: Path, rule: TransformRule = RULE) -> Transformed:
    stem = EOF_STEM if kind == "EOF" else SAFE_STEM
    return transform(source, stem, kind, container, rule, work, LIMITS)


def test_hashing_writer_streams_a_valid_zip_and_hashes_the_final_bytes(tmp_path: Path) -> None:
    target = tmp_path / "out.zip"
    with target.open("wb") as raw:
        writer = HashingWriter(raw)
        assert not writer.seekable()
        with zipfile.ZipFile(writer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("a.EOF", EOF_BODY)
            archive.writestr("b.EOF", b"second")
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        assert archive.read("a.EOF") == EOF_BODY
        assert all(info.flag_bits & 0x08 for info in archive.infolist())  # data descriptors: streaming mode
    _unzip_test(target)
    assert writer.digests() == _hashlib(target) == file_digests(target)
    assert writer.size == target.stat().st_size


def test_unknown_checksum_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown checksum algorithm 'CRC7'"):
        HashingWriter(io.BytesIO(), ("MD5", "CRC7"))
    assert file_digests(_eof(tmp_path), ("SHA3-256",)) == {"SHA3-256": hashlib.sha3_256(EOF_BODY).hexdigest()}


def test_eof_becomes_a_deterministic_eof_zip(tmp_path: Path) -> None:
    source = _eof(tmp_path / "in")
    first = _run(source, "EOF", None, tmp_path / "w1")
    assert first.published_name == f"{EOF_STEM}.EOF.zip"
    assert first.path == tmp_path / "w1" / first.published_name
    assert first.size == first.path.stat().st_size
    assert first.checksums == _hashlib(first.path)
    assert first.content == source
    assert not first.kept_as_received
    with zipfile.ZipFile(first.path) as archive:
        assert archive.namelist() == [f"{EOF_STEM}.EOF"]
        assert archive.read(f"{EOF_STEM}.EOF") == EOF_BODY
        assert archive.infolist()[0].date_time == (1980, 1, 1, 0, 0, 0)
    _unzip_test(first.path)

    os.utime(source, (1_600_000_000, 1_600_000_000))  # a refetch with another mtime publishes the same bytes
    second = _run(source, "EOF", None, tmp_path / "w2")
    assert second.path.read_bytes() == first.path.read_bytes()
    assert os.listdir(tmp_path / "w2") == [first.published_name]  # no temporary file left


def test_safe_directory_becomes_a_sorted_safe_zip(tmp_path: Path) -> None:
    result = _run(_safe(tmp_path / "in"), "SAFE", None, tmp_path / "w")
    assert result.published_name == f"{SAFE_STEM}.SAFE.zip"
    top = f"{SAFE_STEM}.SAFE/"
    with zipfile.ZipFile(result.path) as archive:
        names = archive.namelist()
        assert archive.read(f"{top}data/s1a-aux-cal.xml") == EOF_BODY
        assert archive.getinfo(f"{top}manifest.safe").external_attr >> 16 == 0o100644
        assert archive.getinfo(f"{top}data/").external_attr >> 16 == 0o040755
    assert names == [
        top,
        f"{top}data/",
        f"{top}data/a-first.xml",
        f"{top}data/s1a-aux-cal.xml",
        f"{top}data.txt",
        f"{top}empty/",
        f"{top}manifest.safe",
        f"{top}support/",
        f"{top}support/s1-aux-cal.xsd",
    ]
    assert result.checksums == _hashlib(result.path)
    _unzip_test(result.path)


def _wrap(content: Path, container: str, target: Path) -> Path:
    if container == "gz":
        target.write_bytes(gzip.compress(content.read_bytes()))
    elif container == "zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for path in [content, *sorted(content.rglob("*"))][::-1]:  # reverse order, other timestamps
                archive.write(path, path.relative_to(content.parent).as_posix())
    else:
        with tarfile.open(target, "w:gz" if container == "tgz" else "w") as archive:
            archive.add(content, content.name)
    return target


@pytest.mark.parametrize(
    ("kind", "container"),
    [("EOF", "tgz"), ("EOF", "tar"), ("EOF", "gz"), ("EOF", "zip"), ("SAFE", "tgz"), ("SAFE", "tar"), ("SAFE", "zip")],
)
def test_containers_are_normalised_to_the_same_bytes_as_the_plain_input(
    tmp_path: Path, kind: str, container: str
) -> None:
    content = _eof(tmp_path / "in") if kind == "EOF" else _safe(tmp_path / "in")
    plain = _run(content, kind, None, tmp_path / "plain")
    wrapped = _wrap(content, container, tmp_path / f"input.{container}")
    result = _run(wrapped, kind, container, tmp_path / "w")
    assert result.path.read_bytes() == plain.path.read_bytes()
    assert result.checksums == plain.checksums
    assert result.content.parent.parent == tmp_path / "w"  # unpacked for metadata extraction, kept in work_dir
    assert result.content.name == content.name
    if kind == "EOF":
        assert result.content.read_bytes() == EOF_BODY
    else:
        assert (result.content / "data" / "s1a-aux-cal.xml").read_bytes() == EOF_BODY


def test_a_valid_zip_is_kept_byte_for_byte(tmp_path: Path) -> None:
    received = _wrap(_safe(tmp_path / "in"), "zip", tmp_path / f"{SAFE_STEM}.SAFE.zip")
    result = _run(received, "SAFE", "zip", tmp_path / "w", TransformRule(product_types=["*"], keep_valid_zip=True))
    assert result.kept_as_received
    assert result.path.read_bytes() == received.read_bytes()
    assert result.checksums == _hashlib(received)
    assert result.size == received.stat().st_size
    assert (result.content / "manifest.safe").read_bytes() == b"<xfdu/>"


def test_a_zip_with_the_wrong_layout_is_rejected_and_leaves_nothing(tmp_path: Path) -> None:
    received = tmp_path / f"{EOF_STEM}.EOF.zip"
    with zipfile.ZipFile(received, "w") as archive:
        archive.writestr(f"{EOF_STEM}.EOF", EOF_BODY)
        archive.writestr("checksums.md5", b"x")
    with pytest.raises(UnsafeArchive) as caught:
        _run(received, "EOF", "zip", tmp_path / "w", TransformRule(product_types=["*"], keep_valid_zip=True))
    assert caught.value.code == "unexpected-layout"
    assert os.listdir(tmp_path / "w") == []


def test_links_and_special_files_in_a_plain_safe_are_refused(tmp_path: Path) -> None:
    root = _safe(tmp_path / "in")
    (root / "data" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArchive) as caught:
        _run(root, "SAFE", None, tmp_path / "w")
    assert caught.value.code == "link-escape"
    assert os.listdir(tmp_path / "w") == []  # the half-written zip is gone

    (root / "data" / "passwd").unlink()
    os.mkfifo(root / "support" / "pipe")
    with pytest.raises(UnsafeArchive) as caught:
        _run(root, "SAFE", None, tmp_path / "w")
    assert caught.value.code == "special-file"

    with pytest.raises(UnsafeArchive) as caught:
        _run(root, "EOF", None, tmp_path / "w")  # a directory given as an EOF file
    assert caught.value.code == "unexpected-layout"


def test_stored_compression(tmp_path: Path) -> None:
    rule = TransformRule(product_types=["*"], compression="stored")
    result = _run(_eof(tmp_path / "in"), "EOF", None, tmp_path / "w", rule)
    with zipfile.ZipFile(result.path) as archive:
        assert archive.infolist()[0].compress_type == zipfile.ZIP_STORED
        assert archive.read(f"{EOF_STEM}.EOF") == EOF_BODY
    assert result.size > len(EOF_BODY)
    _unzip_test(result.path)


def test_rules_first_match_wins_with_patterns() -> None:
    rules = TransformRules.model_validate(
        [
            {"product_types": ["AUX_WND"], "level": 1},
            {"product_types": ["AUX_*", "MPL_ORB???"], "level": 9},
            {"product_types": ["*"], "compression": "stored"},
        ]
    )
    assert rules.rule_for("AUX_WND").level == 1
    assert rules.rule_for("AUX_POEORB").level == 9
    assert rules.rule_for("MPL_ORBPRE").level == 9
    assert rules.rule_for("aux_poeorb").compression == "stored"  # case-sensitive
    assert rules.rule_for("MSK__LAND_").compression == "stored"


def test_default_rules_cover_the_contract_types() -> None:
    for product_type in ("AUX_POEORB", "AUX_RESORB", "MPL_ORBPRE", "AMH_ERRMAT", "AUX_WND", "AUX_CAL", "NEW_TYPE"):
        rule = DEFAULT_RULES.rule_for(product_type)
        assert (rule.compression, rule.level, rule.keep_valid_zip) == ("deflate", 6, True)
    assert DEFAULT_RULES.root[0].matches("AUX_POEORB")
    assert DEFAULT_RULES.root[1].matches("AUX_WND")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"product_types": ["AUX_*"]}], "no catch-all rule"),
        ([{"product_types": ["*"]}, {"product_types": ["AUX_WND"]}], "never match"),
        ([{"product_types": ["*"], "compresion": "stored"}], "Extra inputs are not permitted"),
        ([{"product_types": ["*"], "level": 0}], "greater than or equal to 1"),
        ([{"product_types": ["*"], "level": 10}], "less than or equal to 9"),
        ([{"product_types": ["*"], "packaging": "tar"}], "Input should be 'zip'"),
        ([{"product_types": []}], "at least 1 item"),
    ],
)
def test_bad_rules_are_refused_at_load(rules: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TransformRules.model_validate(rules)


@pytest.mark.slow
def test_200_mb_eof_checksums_are_those_of_the_zip(tmp_path: Path) -> None:
    # The rate is printed, not asserted: throughput is measured by benchmarks/ingest_throughput.py against its baseline.
    source = tmp_path / f"{EOF_STEM}.EOF"
    with source.open("wb") as out:
        for _ in range(200 * (1 << 20) // len(EOF_BODY) + 1):
            out.write(EOF_BODY)
    size = source.stat().st_size
    started = time.perf_counter()
    result = _run(source, "EOF", None, tmp_path / "w", DEFAULT_RULES.rule_for("AUX_POEORB"))
    elapsed = time.perf_counter() - started
    print(f"\n{size / 1e6:.0f} MB EOF -> {result.size / 1e6:.1f} MB zip: {size / elapsed / 1e6:.0f} MB/s")
    assert result.checksums == file_digests(result.path)

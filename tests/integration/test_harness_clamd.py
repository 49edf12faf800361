"""The clamd fixture is a real clamd that detects EICAR, alone or buried in a large stream."""

from __future__ import annotations

import io
import random

import pytest

from auxip_testing.clamd import FOUND_REPLY, ClamdServer, eicar, instream_scan, version

pytestmark = pytest.mark.integration


def _noise(size: int, seed: int) -> bytes:
    # Seeded so a failure reproduces with the same bytes.
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not a secret


def test_eicar_string_is_the_standard_one() -> None:
    sample = eicar()
    assert len(sample) == 68
    assert sample.startswith(b"X5O!")
    assert sample.endswith(b"H+H*")


def test_clean_file_is_ok(clamd: ClamdServer) -> None:
    assert instream_scan(clamd.host, clamd.port, b"S1A_AUX_CAL_V20190228T092500.SAFE manifest\n") == "stream: OK"


def test_eicar_is_found(clamd: ClamdServer) -> None:
    assert instream_scan(clamd.host, clamd.port, eicar()) == FOUND_REPLY
    assert FOUND_REPLY == "stream: Auxip-Test-EICAR.UNOFFICIAL FOUND"


def test_eicar_in_the_middle_of_a_large_stream_is_found(clamd: ClamdServer) -> None:
    data = _noise(3 << 20, seed=1) + eicar() + _noise(3 << 20, seed=2)
    # A file object and a chunk size that splits the signature across two INSTREAM chunks.
    assert instream_scan(clamd.host, clamd.port, io.BytesIO(data), chunk=(3 << 20) + 30) == FOUND_REPLY


def test_large_clean_stream_is_ok(clamd: ClamdServer) -> None:
    assert clamd.scan(io.BytesIO(_noise(8 << 20, seed=3))) == "stream: OK"


def test_version_is_reported(clamd: ClamdServer) -> None:
    assert clamd.version.startswith("ClamAV ")
    assert version(clamd.host, clamd.port) == clamd.version


def test_private_database_holds_the_test_signatures(clamd: ClamdServer) -> None:
    assert sorted(p.name for p in clamd.database_dir.iterdir()) == ["auxip-test.hdb", "auxip-test.ndb"]

"""Pure functions of the storage package: HTTP Range resolution and storage URL parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from auxip.storage import (
    ByteRange,
    LocalStorage,
    RangeNotSatisfiableError,
    S3Storage,
    StorageURLError,
    open_storage,
    parse_range_header,
)


def test_open_storage(tmp_path: Path) -> None:
    local = open_storage(tmp_path.as_uri())
    assert isinstance(local, LocalStorage)
    assert local.root == tmp_path.resolve()
    s3 = open_storage("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.url) == ("bucket", "some/prefix", "s3://bucket/some/prefix")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://host/x", "unsupported scheme 'ftp'"),
        ("/plain/path", "unsupported scheme ''"),
        ("file://remote/x", "must be local"),
        ("file:///does/not/exist", "not an existing directory"),
        ("s3:///prefix", "missing bucket"),
        ("s3://bucket/p?x=1", "query strings"),
    ],
)
def test_open_storage_names_the_bad_url(url: str, reason: str) -> None:
    with pytest.raises(StorageURLError, match=reason) as caught:
        open_storage(url)
    assert url in str(caught.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=-100", ByteRange(900, 100)),
        ("bytes=-5000", ByteRange(0, 1000)),
        ("bytes=990-", ByteRange(990, 10)),
        ("bytes=5-5000", ByteRange(5, 995)),
        ("bytes=0-1,5-6", None),  # multiple ranges: whole file
        ("items=0-1", None),
        ("bytes=5-2", None),
        ("bytes=abc", None),
    ],
)
def test_parse_range_header(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range_header(header, 1000) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range_header(header, size)


def test_content_range() -> None:
    assert ByteRange(0, 1024).content_range(5000) == "bytes 0-1023/5000"
    assert ByteRange(10, 5).http_header() == "bytes=10-14"

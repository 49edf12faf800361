"""The S3 source against the harness S3Proxy: prefixes, pagination, ETag checksums, multipart, refusals."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone, TransientSourceError
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.s3 import S3Source, md5_of_etag, parse_url
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import UNLIMITED
from auxip_testing.process import free_port
from auxip_testing.s3 import S3Server

pytestmark = pytest.mark.integration

EOF_NAME = "S1A_OPER_AUX_PREORB_OPOD_20240101T001234_V20240101T000000_20240103T000000.EOF"
SAFE_NAME = "S1A_AUX_INS_V20190228T092500_G20190227T095512.SAFE"
PART = 5 << 20  # S3's minimum multipart part size


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[tuple[Any, str]]:
    client = s3_server.client()
    name = S3Server.fresh_bucket_name("ingest")
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()


def make_source(server: S3Server, url: str, *, secret: str | None = None, **settings: Any) -> S3Source:
    values: dict[str, Any] = {"name": "s3-test", "url": url, "endpoint_url": server.endpoint_url,
                              "region": server.region, "settle_seconds": 0, **settings}  # fmt: skip
    page_size = values.pop("page_size", 1000)
    credentials = Credentials(access_key=server.access_key, secret_key=secret or server.secret_key)
    return S3Source(SourceSettings(**values), credentials, UNLIMITED, page_size=page_size)


@pytest.fixture
async def source(s3_server: S3Server, bucket: tuple[Any, str]) -> AsyncIterator[S3Source]:
    adapter = make_source(s3_server, f"s3://{bucket[1]}/incoming")
    yield adapter
    await adapter.close()


async def entries(source: S3Source) -> dict[str, RemoteFile]:
    return {entry.name: entry async for entry in source.list()}


def put(bucket: tuple[Any, str], objects: dict[str, bytes]) -> None:
    client, name = bucket
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=name, Key=item[0], Body=item[1]), objects.items()))


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def layout(bucket: tuple[Any, str]) -> dict[str, bytes]:
    objects = {
        f"incoming/{EOF_NAME}": os.urandom(1 << 20 | 333),
        f"incoming/{SAFE_NAME}/manifest.safe": b"<xfdu/>",
        f"incoming/{SAFE_NAME}/data/s1a-aux-ins.xml": os.urandom(40_000),
        f"incoming/{SAFE_NAME}/.DS_Store": b"hidden member",
        "incoming/.hidden.EOF": b"hidden",
        "incoming/upload.EOF.part": b"partial",
        "incoming/other/inner.EOF": b"not a product prefix",
        "incoming2/sibling.EOF": b"another prefix",
        "elsewhere.EOF": b"outside the prefix",
    }
    put(bucket, objects)
    return objects


async def test_lists_objects_and_safe_prefixes_under_the_prefix(source: S3Source, layout: dict[str, bytes]) -> None:
    listed = await entries(source)
    assert sorted(listed) == sorted([EOF_NAME, SAFE_NAME])
    eof = listed[EOF_NAME]
    data = layout[f"incoming/{EOF_NAME}"]
    assert (eof.path, eof.size, eof.version, eof.checksum) == (f"incoming/{EOF_NAME}", len(data), md5(data),
                                                                ("MD5", md5(data)))  # fmt: skip
    safe = listed[SAFE_NAME]
    assert (safe.path, safe.is_dir, safe.checksum) == (f"incoming/{SAFE_NAME}", True, None)
    assert safe.size == len(layout[f"incoming/{SAFE_NAME}/manifest.safe"]) + 40_000


async def test_fetches_object_and_tree_byte_identical(
    source: S3Source, layout: dict[str, bytes], tmp_path: Path
) -> None:
    listed = await entries(source)
    assert await source.fetch(listed[EOF_NAME], tmp_path / "eof") == len(layout[f"incoming/{EOF_NAME}"])
    assert await source.fetch(listed[SAFE_NAME], tmp_path / "safe") == listed[SAFE_NAME].size
    assert (tmp_path / "eof").read_bytes() == layout[f"incoming/{EOF_NAME}"]
    fetched = sorted(path.relative_to(tmp_path / "safe").as_posix() for path in (tmp_path / "safe").rglob("*.*"))
    assert fetched == ["data/s1a-aux-ins.xml", "manifest.safe"]
    assert (tmp_path / "safe" / "data" / "s1a-aux-ins.xml").read_bytes() == layout[
        f"incoming/{SAFE_NAME}/data/s1a-aux-ins.xml"
    ]


async def test_objects_are_listed_at_once_but_a_tree_settles(s3_server: S3Server, bucket: tuple[Any, str]) -> None:
    put(bucket, {f"in/{EOF_NAME}": b"eof", f"in/{SAFE_NAME}/manifest.safe": b"<xfdu/>"})
    source = make_source(s3_server, f"s3://{bucket[1]}/in/", settle_seconds=60)
    try:
        assert sorted(await entries(source)) == [EOF_NAME]
    finally:
        await source.close()


async def test_pagination_lists_every_key_once(s3_server: S3Server, bucket: tuple[Any, str]) -> None:
    names = [f"S1A_OPER_AUX_RESORB_OPOD_{index:04d}.EOF" for index in range(120)]
    put(bucket, {f"paged/{name}": name.encode() for name in names})
    source = make_source(s3_server, f"s3://{bucket[1]}/paged", page_size=50)
    try:
        listed = [entry.name async for entry in source.list()]
    finally:
        await source.close()
    assert sorted(listed) == names


async def test_multipart_object_has_no_checksum_and_fetches_whole(
    source: S3Source, bucket: tuple[Any, str], tmp_path: Path
) -> None:
    client, name = bucket
    key = f"incoming/{EOF_NAME}"
    parts = [os.urandom(PART), os.urandom(1000)]
    upload = client.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
    etags = [client.upload_part(Bucket=name, Key=key, UploadId=upload, PartNumber=number, Body=data)["ETag"]
             for number, data in enumerate(parts, start=1)]  # fmt: skip
    client.complete_multipart_upload(
        Bucket=name, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, start=1)]},
    )  # fmt: skip
    entry = (await entries(source))[EOF_NAME]
    assert entry.version.endswith("-2")
    assert entry.checksum is None
    assert await source.fetch(entry, tmp_path / "eof") == PART + 1000
    assert (tmp_path / "eof").read_bytes() == b"".join(parts)


async def test_deleted_or_replaced_object_is_gone(
    source: S3Source, bucket: tuple[Any, str], layout: dict[str, bytes], tmp_path: Path
) -> None:
    client, name = bucket
    listed = await entries(source)
    client.put_object(Bucket=name, Key=f"incoming/{EOF_NAME}", Body=b"a new version")
    with pytest.raises(RemoteFileGone, match="changed since it was listed"):
        await source.fetch(listed[EOF_NAME], tmp_path / "replaced")
    client.delete_object(Bucket=name, Key=f"incoming/{EOF_NAME}")
    with pytest.raises(RemoteFileGone, match="NoSuchKey"):
        await source.fetch(listed[EOF_NAME], tmp_path / "deleted")
    client.delete_object(Bucket=name, Key=f"incoming/{SAFE_NAME}/manifest.safe")
    with pytest.raises(RemoteFileGone):
        await source.fetch(listed[SAFE_NAME], tmp_path / "tree")
    assert list(tmp_path.iterdir()) == []


async def test_wrong_secret_and_missing_bucket_are_permanent(s3_server: S3Server, bucket: tuple[Any, str]) -> None:
    wrong = make_source(s3_server, f"s3://{bucket[1]}/incoming", secret=secrets.token_urlsafe(30))
    missing = make_source(s3_server, f"s3://{bucket[1]}-absent/incoming")
    try:
        with pytest.raises(PermanentSourceError, match="HTTP 403"):
            await entries(wrong)
        with pytest.raises(PermanentSourceError, match="bucket does not exist"):
            await entries(missing)
    finally:
        await wrong.close()
        await missing.close()


async def test_unreachable_endpoint_is_transient(s3_server: S3Server) -> None:
    source = make_source(s3_server, "s3://bucket/in", endpoint_url=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(TransientSourceError, match="EndpointConnectionError"):
            await entries(source)
    finally:
        await source.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [("s3://b/incoming", ("b", "incoming/")), ("s3://b/a/b/", ("b", "a/b/")), ("s3://b", ("b", ""))],
)
def test_url_names_bucket_and_folder_prefix(url: str, expected: tuple[str, str]) -> None:
    assert parse_url(url) == expected


def test_only_single_part_etags_are_md5() -> None:
    assert md5_of_etag("9E107D9D372BB6826BD81D3542A419D6") == ("MD5", "9e107d9d372bb6826bd81d3542a419d6")
    assert md5_of_etag("9e107d9d372bb6826bd81d3542a419d6-2") is None
    assert md5_of_etag(None) is None

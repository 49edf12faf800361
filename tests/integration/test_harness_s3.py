"""The `s3_server` fixture is a real S3 endpoint (S3Proxy, filesystem backend) spoken to with stock boto3."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Callable, Iterator

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from auxip_testing.s3 import S3Server

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[tuple[BaseClient, str]]:
    """A client and a bucket created for this test only (the server is shared by the session)."""
    client = s3_server.client()
    name = s3_server.fresh_bucket_name()
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_fixture_values(s3_server: S3Server) -> None:
    assert s3_server.endpoint_url == f"http://127.0.0.1:{s3_server.port}"
    assert s3_server.region == "us-east-1"
    assert len(s3_server.secret_key) >= 30
    assert s3_server.fresh_bucket_name() != s3_server.fresh_bucket_name()


def test_wrong_secret_is_refused(s3_server: S3Server) -> None:
    forged = S3Server(
        s3_server.endpoint_url, s3_server.access_key, "not-the-secret", s3_server.region, s3_server.basedir
    )
    with pytest.raises(ClientError) as error:
        forged.client(retries={"max_attempts": 1}).list_buckets()
    assert _error_code(error) == "SignatureDoesNotMatch"


def test_created_bucket_is_listed(s3_server: S3Server, bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    assert name in {entry["Name"] for entry in client.list_buckets()["Buckets"]}
    assert (s3_server.basedir / name).is_dir()


def test_put_get_round_trip_and_md5_etag(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    data = os.urandom(700_000)
    put = client.put_object(Bucket=name, Key="aux/S1A_AUX_CAL.zip", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - S3's ETag is the MD5 by definition
    got = client.get_object(Bucket=name, Key="aux/S1A_AUX_CAL.zip")
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data


def test_list_objects_v2_returns_exactly_the_keys_put(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    keys = ["S1A/AUX_CAL/a.zip", "S1A/AUX_PP1/b.zip", "S1B/AUX_CAL/c.zip", "top.txt"]
    for key in keys:
        client.put_object(Bucket=name, Key=key, Body=key.encode())
    assert [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]] == sorted(keys)
    s1a = client.list_objects_v2(Bucket=name, Prefix="S1A/")
    assert [o["Key"] for o in s1a["Contents"]] == ["S1A/AUX_CAL/a.zip", "S1A/AUX_PP1/b.zip"]
    assert s1a["KeyCount"] == 2
    top = client.list_objects_v2(Bucket=name, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["S1A/", "S1B/"]
    assert [o["Key"] for o in top["Contents"]] == ["top.txt"]
    assert "Contents" not in client.list_objects_v2(Bucket=name, Prefix="S2A/")


def test_list_objects_v2_paginates(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    keys = [f"page/{i:03d}" for i in range(7)]
    for key in keys:
        client.put_object(Bucket=name, Key=key, Body=b"")
    pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=name, PaginationConfig={"PageSize": 3}))
    assert [len(page["Contents"]) for page in pages] == [3, 3, 1]
    assert [o["Key"] for page in pages for o in page["Contents"]] == keys


def _upload_parts(client: BaseClient, bucket: str, key: str, parts: list[bytes]) -> dict[str, object]:
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, part in enumerate(parts, start=1):
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return dict(
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    )


def test_multipart_upload_completes_with_s3_etag(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
    result = _upload_parts(client, name, "big.tar", parts)
    # S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-<number of parts>".
    part_md5s = b"".join(hashlib.md5(part).digest() for part in parts)  # noqa: S324 - S3's definition
    assert result["ETag"] == f'"{hashlib.md5(part_md5s).hexdigest()}-3"'  # noqa: S324
    body = client.get_object(Bucket=name, Key="big.tar")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()
    assert not client.list_multipart_uploads(Bucket=name).get("Uploads")


def test_multipart_parts_below_5_mib_are_refused(bucket: tuple[BaseClient, str]) -> None:
    # Like AWS, so a too-small chunk size in the application fails here and not only in production.
    client, name = bucket
    with pytest.raises(ClientError) as error:
        _upload_parts(client, name, "small.bin", [b"a" * 1000, b"b" * 1000])
    assert _error_code(error) == "EntityTooSmall"


def test_wrong_content_md5_is_rejected(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    wrong = _b64(hashlib.md5(b"something else").digest())  # noqa: S324 - Content-MD5 is MD5 by definition
    with pytest.raises(ClientError) as error:
        client.put_object(Bucket=name, Key="corrupt.bin", Body=os.urandom(1000), ContentMD5=wrong)
    assert _error_code(error) in {"BadDigest", "InvalidDigest"}
    assert "Contents" not in client.list_objects_v2(Bucket=name)


def test_right_content_md5_is_accepted(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    data = os.urandom(1000)
    client.put_object(Bucket=name, Key="ok.bin", Body=data, ContentMD5=_b64(hashlib.md5(data).digest()))  # noqa: S324
    assert client.get_object(Bucket=name, Key="ok.bin")["Body"].read() == data


def _sha256(data: bytes) -> str:
    return _b64(hashlib.sha256(data).digest())


def _crc32(data: bytes) -> str:
    return _b64(zlib.crc32(data).to_bytes(4, "big"))


@pytest.mark.parametrize(("algorithm", "checksum"), [("SHA256", _sha256), ("CRC32", _crc32)])
def test_flexible_checksum_is_stored_and_returned(
    bucket: tuple[BaseClient, str], algorithm: str, checksum: Callable[[bytes], str]
) -> None:
    client, name = bucket
    data = os.urandom(100_000)
    put = client.put_object(Bucket=name, Key="sum.bin", Body=data, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == checksum(data)
    got = client.get_object(Bucket=name, Key="sum.bin", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == checksum(data)
    assert got["Body"].read() == data


def test_wrong_sha256_checksum_is_rejected(bucket: tuple[BaseClient, str]) -> None:
    client, name = bucket
    wrong = _sha256(b"something else")
    with pytest.raises(ClientError) as error:
        client.put_object(Bucket=name, Key="corrupt.bin", Body=os.urandom(1000), ChecksumSHA256=wrong)
    assert _error_code(error) == "BadDigest"

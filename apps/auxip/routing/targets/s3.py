"""An S3 or S3-compatible bucket as a target: `s3://bucket/prefix`, the server from `endpoint_url` (else AWS).

The client is the S3 source's (`auxip.ingest.sources.s3.S3Source`): the same endpoint and addressing rules, TLS
verification with `ca_file`, access key or boto3's default chain, botocore retries off, boto3 in a thread pool of
`concurrency` + 1 threads. Its failure classification applies too (403 and a missing bucket permanent; 5xx, 429,
timeouts and refused connections transient).

The upload goes straight to the final key, in one PutObject, rather than to a temporary key copied afterwards:
an S3 PUT is already atomic (readers see the previous object or the new one, never a part, and a failed upload
leaves nothing), and with `Content-MD5` the server checks the bytes before it stores them, refusing a mismatch
with `BadDigest` — so the final key never holds unverified bytes and a copy would only double the work and leave a
temporary key to clean up after a crash. After the PUT a HEAD confirms the size and, when the ETag is an MD5 (not
for SSE-KMS or SSE-C encrypted buckets), that it equals the expected one.

Single part only, so at most 5 GiB per file (S3's PutObject limit): far above any auxiliary file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from auxip.ingest.sources.base import RemoteFileGone, SourceError
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.http import strip_etag
from auxip.ingest.sources.s3 import S3Source, md5_of_etag
from auxip.ingest.sources.throttle import UNLIMITED
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import Delivered, PermanentTargetError, TargetError, VerificationError
from auxip.routing.targets.local import (
    as_target_errors,
    check_md5,
    check_size,
    checked_name,
    file_md5,
    local_size,
    source_settings,
)

MAX_SINGLE_PUT = 5 << 30
#: Error codes of a Content-MD5 the received bytes do not match.
DIGEST_CODES = frozenset({"BadDigest", "InvalidDigest"})


class S3Target:
    def __init__(self, settings: TargetSettings, credentials: Credentials) -> None:
        with as_target_errors():
            self._source = S3Source(source_settings(settings), credentials, UNLIMITED)
        self.name = settings.name
        self.settings = settings
        self.bucket = self._source.bucket
        self.prefix = self._source.prefix

    async def _call(self, what: str, operation: str, **options: Any) -> Any:
        """One S3 request, failures as target errors; a missing key (404) as `RemoteFileGone`, for `exists`."""
        with as_target_errors():
            client = await self._source.client()
        try:
            return await self._source.run(f"{self.name}: {what}", getattr(client, operation), **options)
        except RemoteFileGone:
            raise
        except SourceError as exc:
            cause = exc.__cause__  # `run` chains botocore's exception
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in DIGEST_CODES:
                raise VerificationError(f"{self.name}: {what}: the server received bytes whose MD5 is not the "
                                        "expected one (refused with BadDigest, nothing stored)") from None  # fmt: skip
            with as_target_errors():
                raise

    async def deliver(self, local: Path, name: str, md5: str) -> Delivered:
        key = self.prefix + checked_name(self.name, name)
        where = f"s3://{self.bucket}/{key}"
        sent = local_size(self.name, local)
        if sent > MAX_SINGLE_PUT:
            raise PermanentTargetError(f"{self.name}: {local} has {sent} bytes, above the 5 GiB of a single PUT")
        options: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentLength": sent}
        if self.settings.verify_checksum:
            options["ContentMD5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        with as_target_errors():  # a 404 here is a missing bucket
            try:
                with local.open("rb") as body:
                    await self._call(f"PUT {where}", "put_object", Body=body, **options)
            except VerificationError as exc:
                # Tells a corrupt local copy (its MD5 differs too) from bytes damaged on the way (it matches).
                actual = await asyncio.to_thread(file_md5, local)
                raise VerificationError(f"{exc}; expected MD5 {md5}, the local file's is {actual}") from None
            head = await self._call(f"HEAD {where}", "head_object", Bucket=self.bucket, Key=key)
        etag = md5_of_etag(strip_etag(head.get("ETag")))
        try:
            check_size(f"{self.name}: {where}", sent, head.get("ContentLength"))
            if self.settings.verify_checksum and etag is not None:
                check_md5(f"{self.name}: {where} (ETag)", md5, etag[1])
        except VerificationError:
            # Never leave other bytes than the expected ones under the final key.
            with contextlib.suppress(TargetError, RemoteFileGone):
                await self._call(f"DELETE {where}", "delete_object", Bucket=self.bucket, Key=key)
            raise
        verified = "size"
        if self.settings.verify_checksum:
            # An encrypted bucket's ETag is no MD5, but the server still checked Content-MD5 before storing.
            verified = "size+md5" if etag is None else "size+etag"
        return Delivered(location=where, size=sent, verified=verified)

    async def exists(self, name: str) -> int | None:
        key = self.prefix + checked_name(self.name, name)
        try:
            head = await self._call(f"HEAD s3://{self.bucket}/{key}", "head_object", Bucket=self.bucket, Key=key)
        except RemoteFileGone:
            return None
        return int(head["ContentLength"])

    async def close(self) -> None:
        await self._source.close()

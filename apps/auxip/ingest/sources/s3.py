"""S3 and S3-compatible buckets: `s3://bucket/prefix`, with the server from `SourceSettings.endpoint_url`.

Endpoint: the URL names only the bucket and the prefix (a folder: `s3://b/incoming` lists `incoming/...`, never
`incoming2/...`). `endpoint_url` (e.g. `https://s3.example.org:9000`) selects an S3-compatible server and then
path-style addressing, which such servers support without wildcard DNS; without it, AWS's endpoint for `region`.
TLS is verified (against `ca_file` when set) unless `verify_tls` is false. Credentials are `access_key`/`secret_key`;
without them boto3's default chain applies (instance profile, web identity), which is what AWS deployments use.

What is listed: objects directly under the prefix, and each `<name>.SAFE/` sub-prefix as one directory product
(all objects below it). Other sub-prefixes are not descended into, as with the directory sources. An object is
atomic (it is visible only once its upload completed), so objects are listed at once, without `settle_seconds`;
a `.SAFE` tree is uploaded object by object, so it waits until its newest object is `settle_seconds` old.

`version` is the ETag. A single-part upload's ETag is the MD5 of the object (32 hex digits, no `-`) and is
advertised as the checksum; multipart ETags (`<hex>-<parts>`) are not an MD5 of the content, nor are the ETags of
SSE-KMS or SSE-C encrypted objects, which a source using those must not rely on (a checksum mismatch would reject
every product). `fetch` sends `If-Match` with the listed ETag, so an object replaced since the listing is
`RemoteFileGone` rather than a silent mix of versions.

Post-delivery actions (routing): `remove` deletes the object (every object of a `.SAFE` prefix); `move` copies each
object server side under `<prefix><folder>/` and then deletes it. That folder is a sub-prefix that is not `.SAFE`,
so moved objects are never listed again.

boto3 runs in a thread pool of this source's own (sized to `concurrency`, plus one for listings): aiobotocore would
pin an older botocore (see `auxip.storage.s3`). botocore's own retries are off: the pipeline retries.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
    SSLError,
)
from multidict import CIMultiDict

from auxip.ingest.sources.base import (
    PermanentSourceError,
    RemoteFile,
    RemoteFileGone,
    SourceError,
    TransientSourceError,
)
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.http import Child, Members, before_ignored, strip_etag, tree_version
from auxip.ingest.sources.listing import CHUNK, is_hidden, is_product_dir, is_temporary, removed_on_failure
from auxip.ingest.sources.retry_after import error_for_status
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle
from auxip.storage.s3 import s3_client
from auxip.storage.settings import S3Settings

T = TypeVar("T")
MD5_ETAG = re.compile(r"[0-9a-f]{32}")
PAGE_SIZE = 1000
CHANGED_CODES = frozenset({"PreconditionFailed"})
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix ending with `/` or empty) of `s3://bucket/prefix`."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query:
        raise PermanentSourceError(f"{url!r} is not an s3://bucket/prefix URL")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def md5_of_etag(etag: str | None) -> tuple[str, str] | None:
    value = (etag or "").lower()
    return ("MD5", value) if MD5_ETAG.fullmatch(value) else None


def classify(exc: Exception, what: str) -> SourceError:
    """The source error class of a boto3/botocore failure."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode", 0))
        message = f"{what}: {code or 'error'} {error.get('Message', '')}".rstrip()
        if code in CHANGED_CODES or status == 412:
            return RemoteFileGone(f"{what}: the object changed since it was listed")
        if code in MISSING_BUCKET_CODES:
            return PermanentSourceError(f"{message}: the bucket does not exist")
        headers: Mapping[str, str] = CIMultiDict(meta.get("HTTPHeaders", {}))
        return error_for_status(status, headers, message) or PermanentSourceError(message)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentSourceError(f"{what}: no usable S3 credentials: {exc}")
    if isinstance(exc, SSLError):
        return PermanentSourceError(f"{what}: TLS verification failed ({exc}); set ca_file for a private CA")
    if isinstance(exc, IncompleteReadError | ResponseStreamingError):
        return RemoteFileGone(f"{what}: transfer truncated: {exc}")
    return TransientSourceError(f"{what}: {type(exc).__name__}: {exc}")


def _read_into(body: Any, handle: BinaryIO) -> int:
    chunk: bytes = body.read(CHUNK)
    handle.write(chunk)
    return len(chunk)


class S3Source:
    def __init__(
        self, settings: SourceSettings, credentials: Credentials, throttle: Throttle, *, page_size: int = PAGE_SIZE
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.bucket, self.prefix = parse_url(settings.url)
        #: MaxKeys per ListObjectsV2 request (1000 is the S3 maximum).
        self.page_size = page_size
        self._credentials = credentials
        self._throttle = throttle
        self._executor = ThreadPoolExecutor(settings.concurrency + 1, thread_name_prefix=f"s3-{settings.name}")
        self._client: Any = None
        self._client_lock = asyncio.Lock()

    def _new_client(self) -> Any:
        settings, creds = self.settings, self._credentials
        return s3_client(
            S3Settings(
                endpoint_url=settings.endpoint_url,
                access_key=creds.access_key,
                secret_key=creds.secret_key,
                region=settings.region,
                addressing_style="path" if settings.endpoint_url else "auto",
                max_pool_connections=settings.concurrency + 1,
                connect_timeout=30,
                read_timeout=120,
                max_attempts=1,  # the pipeline retries, with backoff and a circuit breaker
                verify=settings.ca_file or settings.verify_tls,
            )
        )

    async def run(self, what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function` in this source's threads, its failures classified."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))
        except (BotoCoreError, ClientError) as exc:
            raise classify(exc, what) from exc

    async def client(self) -> Any:
        """The boto3 client (shared with the S3 target); call its methods through `run`."""
        # Built in a thread on first use: creating a client reads botocore's service model (~0.1 s of CPU).
        async with self._client_lock:
            if self._client is None:
                try:
                    self._client = await self.run(f"{self.name}: S3 client", self._new_client)
                except ValueError as exc:  # botocore's verdict on a malformed endpoint_url or region
                    raise PermanentSourceError(f"{self.name}: S3 client configuration: {exc}") from None
        return self._client

    async def _pages(self, prefix: str, delimiter: str | None) -> AsyncIterator[dict[str, Any]]:
        client = await self.client()
        options: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_size}
        if delimiter:
            options["Delimiter"] = delimiter
        what = f"{self.name}: listing s3://{self.bucket}/{prefix}"
        while True:
            page: dict[str, Any] = await self.run(what, client.list_objects_v2, **options)
            yield page
            if not page.get("IsTruncated"):
                return
            options["ContinuationToken"] = page["NextContinuationToken"]

    def _wanted(self, name: str) -> bool:
        return not is_hidden(name) and not is_temporary(name) and self.settings.accepts(name)

    async def list(self) -> AsyncIterator[RemoteFile]:
        now = datetime.now(UTC)
        async for page in self._pages(self.prefix, "/"):
            for item in page.get("Contents", []):
                entry = self._object_entry(item)
                if entry is not None:
                    yield entry
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(self.prefix) :].removesuffix("/")
                if is_product_dir(name) and self._wanted(name):
                    tree = await self._tree_entry(common["Prefix"], name, now)
                    if tree is not None:
                        yield tree

    def _object_entry(self, item: Mapping[str, Any]) -> RemoteFile | None:
        key: str = item["Key"]
        name = key[len(self.prefix) :]
        modified: datetime = item["LastModified"]
        if not name or name.endswith("/") or not self._wanted(name) or before_ignored(self.settings, modified):
            return None  # "folder" marker objects have no name of their own
        etag = strip_etag(item.get("ETag"))
        size: int = item["Size"]
        return RemoteFile(path=key, name=name, size=size, modified=modified,
                          version=etag or f"{size}:{modified.isoformat()}", checksum=md5_of_etag(etag))  # fmt: skip

    async def _members(self, prefix: str) -> Members | None:
        """Every object of the tree at `prefix` (relative path, object); None while one is a temporary upload."""
        members: Members = []
        async for page in self._pages(prefix, None):
            for item in page.get("Contents", []):
                relative: str = item["Key"][len(prefix) :]
                parts = relative.split("/")
                if not relative or relative.endswith("/") or any(is_hidden(part) for part in parts):
                    continue
                if is_temporary(parts[-1]):
                    return None
                child = Child(parts[-1], item["Key"], False, item["Size"], item["LastModified"],
                              strip_etag(item.get("ETag")))  # fmt: skip
                members.append((relative, child))
        return members

    async def _tree_entry(self, prefix: str, name: str, now: datetime) -> RemoteFile | None:
        members = await self._members(prefix)
        if not members:
            return None
        newest = max(child.modified for _, child in members if child.modified is not None)
        if before_ignored(self.settings, newest) or now - newest < timedelta(seconds=self.settings.settle_seconds):
            return None
        size = sum(child.size or 0 for _, child in members)
        return RemoteFile(path=prefix.removesuffix("/"), name=name, size=size, modified=newest,
                          version=tree_version(members), is_dir=True)  # fmt: skip

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        if not entry.is_dir:
            return await self._download(entry.path, entry.version, entry.size, destination)
        members = await self._members(entry.path + "/")
        if not members or tree_version(members) != entry.version:
            raise RemoteFileGone(f"{self.name}: {entry.path} changed since it was listed")
        total = 0
        with removed_on_failure(destination):
            for relative, child in members:
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                total += await self._download(child.url, child.etag, child.size, target)
        return total

    async def _download(self, key: str, etag: str | None, size: int | None, destination: Path) -> int:
        client = await self.client()
        what = f"{self.name}: GET s3://{self.bucket}/{key}"
        options: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        # A version without ":" is the listed ETag (the size:mtime fallback always has one).
        if etag and ":" not in etag:
            options["IfMatch"] = f'"{etag}"'
        written = 0
        with removed_on_failure(destination), destination.open("wb") as handle:
            response = await self.run(what, client.get_object, **options)
            body = response["Body"]
            try:
                while count := await self.run(what, _read_into, body, handle):
                    await self._throttle.consume(count)
                    written += count
            finally:
                body.close()
            if size is not None and written != size:
                raise RemoteFileGone(f"{what}: received {written} of {size} bytes")
        return written

    async def _keys(self, entry: RemoteFile) -> Sequence[str]:
        """Every object of the entry: its key, or all keys below a `.SAFE` prefix (hidden and partial ones too)."""
        if not entry.is_dir:
            return [entry.path]
        return [item["Key"] async for page in self._pages(entry.path + "/", None) for item in page.get("Contents", [])]

    async def remove(self, entry: RemoteFile) -> None:
        """Delete the entry's objects (a routing post-delivery action); already gone is fine (S3 answers 204)."""
        client = await self.client()
        for key in await self._keys(entry):
            await self.run(f"{self.name}: DELETE s3://{self.bucket}/{key}", client.delete_object,
                           Bucket=self.bucket, Key=key)  # fmt: skip

    async def move(self, entry: RemoteFile, folder: str) -> None:
        """Move the entry into `folder` below the prefix: each object copied there (server side, so up to S3's 5 GiB
        per CopyObject), then deleted. An object already gone (moved by an earlier, interrupted attempt) is skipped;
        the copy replaces a previous one of the same name."""
        client = await self.client()
        target = self.prefix + folder.strip("/") + "/"
        for key in await self._keys(entry):
            destination = target + key[len(self.prefix) :]
            where = f"{self.name}: moving s3://{self.bucket}/{key} to {destination}"
            try:
                await self.run(where, client.copy_object, Bucket=self.bucket, Key=destination,
                               CopySource={"Bucket": self.bucket, "Key": key})  # fmt: skip
            except RemoteFileGone:
                continue
            await self.run(where, client.delete_object, Bucket=self.bucket, Key=key)

    async def close(self) -> None:
        if self._client is not None:
            await self.run(f"{self.name}: closing", self._client.close)
            self._client = None
        await asyncio.to_thread(self._executor.shutdown)

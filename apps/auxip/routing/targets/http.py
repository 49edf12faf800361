"""An HTTP(S) collection that accepts uploads as a target: `http(s)://host[:port]/dir/` — WebDAV (nginx dav, Apache
mod_dav) or any server that takes PUT and MOVE.

The session is the HTTP sources' (`auxip.ingest.sources.http.HttpTransport`): TLS verified against `ca_file`
unless `verify_tls` is false, Basic (username/password) or Bearer (token) auth, one connection pool per target.

Delivery: PUT to a hidden temporary name in the collection, HEAD for its Content-Length (and its ETag when that is an
MD5, which nginx's and Apache's are not: theirs derive from mtime and size), then MOVE onto the final name with
`Overwrite: T`. PUT straight to the final URL would be atomic too on nginx and Apache (both spool the body and
rename), but the HEAD could then only find a bad copy after it had replaced the good one; MOVE (a rename(2) on both)
publishes only what was verified. Redirects are not followed: a PUT body cannot be replayed safely, so a redirect is
a configuration error.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.http import HttpTransport, strip_etag
from auxip.ingest.sources.retry_after import LATER, error_for_exception, parse_retry_after
from auxip.ingest.sources.throttle import UNLIMITED
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import (
    Delivered,
    PermanentTargetError,
    TargetError,
    TransientTargetError,
)
from auxip.routing.targets.local import (
    as_target_errors,
    check_md5,
    check_size,
    checked_name,
    local_size,
    source_settings,
    temporary_name,
)

CLEANUP_TIMEOUT = 10.0
MD5 = re.compile(r"[0-9a-f]{32}")
#: A missing collection (409 is WebDAV's answer to a PUT below one), or a server that takes no uploads there.
NOT_WRITABLE = frozenset({404, 405, 409, 501})


def status_error(status: int, headers: Any, what: str) -> TargetError | None:
    """The classified error for an HTTP status; None for a success."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        location = headers.get("Location")
        return PermanentTargetError(f"{what}: redirected to {location} (HTTP {status}); configure the final URL")
    if status in (401, 403):
        return PermanentTargetError(f"{what}: refused (HTTP {status}); check the target credentials")
    if status in NOT_WRITABLE:
        return PermanentTargetError(f"{what}: the collection does not exist or takes no uploads (HTTP {status})")
    if status in LATER or status >= 500:
        return TransientTargetError(f"{what}: HTTP {status}", parse_retry_after(headers.get("Retry-After")))
    return PermanentTargetError(f"{what}: HTTP {status}")


class HttpTarget:
    def __init__(self, settings: TargetSettings, credentials: Credentials) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise PermanentTargetError(f"{settings.name}: {settings.url!r} is not an http(s)://host/collection/ URL")
        self.name = settings.name
        self.settings = settings
        self.base_url = settings.url if settings.url.endswith("/") else settings.url + "/"
        self._transport = HttpTransport(source_settings(settings), credentials, UNLIMITED)

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, url: str, what: str, accept: Collection[int] = (), **options: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response, when it is a success or one of `accept`; any other answer raises a target error."""
        where = f"{self.name}: {what}"
        try:
            session = self._transport.session()
            async with session.request(method, url, allow_redirects=False, **options) as response:
                error = None if response.status in accept else status_error(response.status, response.headers, where)
                if error is not None:
                    raise error
                yield response
        except (TimeoutError, aiohttp.ClientError) as exc:
            with as_target_errors():
                raise error_for_exception(exc, where) from None

    async def deliver(self, local: Path, name: str, md5: str) -> Delivered:
        final = self.base_url + quote(checked_name(self.name, name))
        temp = self.base_url + quote(temporary_name(name, md5))
        sent = local_size(self.name, local)
        try:
            with local.open("rb") as body:
                headers = {"Content-Length": str(sent), "Content-Type": "application/octet-stream"}
                async with self._request("PUT", temp, f"PUT {temp}", data=body, headers=headers):
                    pass
            async with self._request("HEAD", temp, f"HEAD {temp}") as response:
                found, etag = response.content_length, (strip_etag(response.headers.get("ETag")) or "").lower()
            check_size(f"{self.name}: {temp}", sent, found)
            verified = "size"
            if self.settings.verify_checksum and MD5.fullmatch(etag):
                check_md5(f"{self.name}: {temp} (ETag)", md5, etag)
                verified = "size+etag"
            move = {"Destination": final, "Overwrite": "T"}
            async with self._request("MOVE", temp, f"MOVE {temp} to {final}", headers=move):
                pass
        except BaseException:
            await self._discard(temp)
            raise
        return Delivered(location=final, size=sent, verified=verified)

    async def _discard(self, temp: str) -> None:
        """Delete a failed upload; a 404 (it was never stored) or an unreachable server leaves nothing to do."""
        with contextlib.suppress(TargetError, TimeoutError):
            async with asyncio.timeout(CLEANUP_TIMEOUT), self._request("DELETE", temp, f"DELETE {temp}", accept=(404,)):
                pass

    async def exists(self, name: str) -> int | None:
        url = self.base_url + quote(checked_name(self.name, name))
        async with self._request("HEAD", url, f"HEAD {url}", accept=(404, 410)) as response:
            return None if response.status in (404, 410) else response.content_length

    async def close(self) -> None:
        await self._transport.close()

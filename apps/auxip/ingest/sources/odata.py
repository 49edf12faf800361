"""Another AUXIP or a PRIP as a source: `odata://host:port/odata/v1` (HTTP) or `odatas://...` (HTTPS).

Polling is the one every CSC client does: `Products?$filter=PublicationDate gt <window start>[ and (<odata_filter>)]
&$orderby=PublicationDate asc&$top=<page size>`, following `@odata.nextLink` when the server sends one and `$skip`
when a page comes back full without it. Ascending PublicationDate keeps `$skip` stable while the source publishes:
new products land after the pages already read.

The cursor belongs to the caller, which persists it: `cursor` is read at the start of `list()`, and `last_seen` is
afterwards the latest PublicationDate seen (never earlier than `cursor`, so `cursor = last_seen` is always safe). The
window starts `overlap_seconds` before the cursor because a source may commit a product with an earlier
PublicationDate after a later one became visible; entries seen again carry the same `version` (the product Id), so
the pipeline's deduplication drops them. `ignore_before` raises the window start (`PublicationDate ge ...`).

Products are atomic at the source (listed only once downloadable), so `settle_seconds` does not apply. Entries:
`path` and `version` the product Id, `name` the product Name, `size` ContentLength, `checksum` the advertised MD5,
`origin_date` the source's OriginDate (its PublicationDate when it has none). A product the adapter cannot read (no
Id, no Name, a Name that is not a plain file name) is a `PermanentSourceError` naming it: skipping it silently
would lose it, and the operator can exclude it with `odata_filter`.

Authentication: Basic (username/password) or a static Bearer token (`token`). The OAuth2 password grant
(a token endpoint plus client id) needs configuration fields the settings do not have yet; it is left to a follow-up.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.http import HttpTransport, before_ignored
from auxip.ingest.sources.listing import is_hidden, is_temporary
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle

SCHEMES = {"odata": "http", "odatas": "https"}
PAGE_SIZE = 1000


def service_root(url: str) -> str:
    """The http(s) service root of an odata(s) source URL, without a trailing `/`."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.netloc:
        raise PermanentSourceError(f"{url!r} is not an odata:// or odatas:// service root URL")
    return urlunsplit((SCHEMES[parts.scheme], parts.netloc, parts.path.rstrip("/"), "", ""))


def odata_datetime(moment: datetime) -> str:
    """The contract's rendering (`...ss.sssZ`), truncated to the millisecond: a window start may only move earlier."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _date(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a DateTimeOffset string, got {value!r}")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _md5(checksums: Any) -> tuple[str, str] | None:
    for checksum in checksums if isinstance(checksums, list) else []:
        if isinstance(checksum, Mapping) and str(checksum.get("Algorithm", "")).upper() == "MD5":
            value = checksum.get("Value")
            if isinstance(value, str) and value:
                return ("MD5", value.lower())
    return None


def product_entry(item: Any) -> RemoteFile:
    """The entry for one Products JSON object."""
    try:
        product_id = str(uuid.UUID(str(item["Id"])))
        name = item["Name"]
        size = item["ContentLength"]
        if not isinstance(name, str) or not name or any(char in name for char in "/\\\0") or name in (".", ".."):
            raise ValueError(f"Name {name!r} is not a file name")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"ContentLength {size!r} is not a byte count")
        published = _date(item["PublicationDate"])
        origin = _date(item["OriginDate"]) if item.get("OriginDate") else published
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentSourceError(f"unreadable product {str(item)[:300]}: {exc}") from None
    return RemoteFile(path=product_id, name=name, size=size, modified=published, version=product_id,
                      checksum=_md5(item.get("Checksum")), origin_date=origin)  # fmt: skip


class ODataSource:
    def __init__(
        self, settings: SourceSettings, credentials: Credentials, throttle: Throttle, *, page_size: int = PAGE_SIZE
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.service_root = service_root(settings.url)
        #: `$top` of each page (the contract makes servers honour at least 1000).
        self.page_size = page_size
        #: Window start given by the caller (the last PublicationDate it persisted); None: from the beginning.
        self.cursor: datetime | None = None
        #: After `list()`: the latest PublicationDate seen, or `cursor` when nothing newer came.
        self.last_seen: datetime | None = None
        self.transport = HttpTransport(settings, credentials, throttle)

    def window_filter(self) -> str | None:
        """The `$filter` of this poll: the PublicationDate window and `odata_filter`."""
        clauses = []
        start = None if self.cursor is None else self.cursor - timedelta(seconds=self.settings.overlap_seconds)
        floor = self.settings.ignore_before
        if floor is not None and (start is None or before_ignored(self.settings, start)):
            clauses.append(f"PublicationDate ge {odata_datetime(floor)}")
        elif start is not None:
            clauses.append(f"PublicationDate gt {odata_datetime(start)}")
        if self.settings.odata_filter:
            clauses.append(f"({self.settings.odata_filter})")
        return " and ".join(clauses) or None

    def _page_url(self, skip: int) -> str:
        params = {"$orderby": "PublicationDate asc", "$top": str(self.page_size)}
        window = self.window_filter()
        if window:
            params["$filter"] = window
        if skip:
            params["$skip"] = str(skip)
        return f"{self.service_root}/Products?{urlencode(params, quote_via=quote)}"

    def _next_link(self, page_url: str, link: str) -> str:
        target = urljoin(page_url, link)
        # Credentials go with every request: never to another origin than the configured one.
        if urlsplit(target)[:2] != urlsplit(self.service_root)[:2]:
            raise PermanentSourceError(f"{self.name}: @odata.nextLink points to another server: {target}")
        return target

    async def _page(self, url: str) -> tuple[list[Any], str | None]:
        what = f"{self.name}: GET {url}"
        async with self.transport.request("GET", url, what, headers={"Accept": "application/json"}) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError as exc:
                raise PermanentSourceError(f"{what}: the answer is not JSON: {exc}") from None
        items = body.get("value") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise PermanentSourceError(f"{what}: the answer has no `value` list of products")
        link = body.get("@odata.nextLink")
        return items, link if isinstance(link, str) and link else None

    def _wanted(self, entry: RemoteFile) -> bool:
        name = entry.name
        if is_hidden(name) or is_temporary(name) or not self.settings.accepts(name):
            return False
        return entry.modified is None or not before_ignored(self.settings, entry.modified)

    async def list(self) -> AsyncIterator[RemoteFile]:
        self.last_seen = self.cursor
        skip = 0
        while True:
            # One `$top` worth of products: a server with a lower page cap serves it in nextLink-linked parts.
            url: str | None = self._page_url(skip)
            received = 0
            while url is not None:
                items, link = await self._page(url)
                for item in items:
                    entry = product_entry(item)
                    if entry.modified is not None and (self.last_seen is None or entry.modified > self.last_seen):
                        self.last_seen = entry.modified
                    if self._wanted(entry):
                        yield entry
                received += len(items)
                # An empty part with a link would loop forever.
                url = self._next_link(url, link) if link is not None and items else None
            if received < self.page_size:
                return
            skip += received

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        url = f"{self.service_root}/Products({entry.path})/$value"
        return await self.transport.download(url, destination, entry.size, f"{self.name}: GET {entry.name}")

    async def close(self) -> None:
        await self.transport.close()

"""HTTP(S) sources: a directory published with an nginx/Apache-style autoindex listing, and the shared HTTP plumbing.

`HttpTransport` is what every aiohttp-based adapter (this one, WebDAV, OData) shares: one lazily created
`ClientSession` with TLS verification on (plus `ca_file`), Basic or Bearer auth, classified errors, and the streamed
download with the bandwidth cap and the byte-count check. `DirectorySource` is the directory-tree logic shared with
WebDAV: files at the top of the source directory and `*.SAFE` directories (fetched as trees); other subdirectories
are not descended into. Subclasses only say how one directory is read. Which names are uploads in progress or
hidden is the rule every directory-like source shares (`auxip.ingest.sources.local`).

Listings are approximate (nginx shows minutes and may truncate displayed names; Apache rounds sizes), so the entry
comes from a HEAD per candidate file (exact Content-Length, Last-Modified, ETag). To keep a poll cheap, a HEAD answer
is reused while the file's listing row (name, date, size as shown) is unchanged since the previous poll; a file
rewritten with the same size within the same listed minute is therefore seen at the next change of its row.
"""

from __future__ import annotations

import abc
import asyncio
import builtins
import contextlib
import hashlib
import ssl
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import aiohttp

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.listing import CHUNK, is_hidden, is_product_dir, is_temporary, removed_on_failure
from auxip.ingest.sources.retry_after import error_for_exception, error_for_status
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle

TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)
HEAD_CONCURRENCY = 8

#: Decides from (name, is_directory) whether a directory child is worth describing.
Wanted = Callable[[str, bool], bool]


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def before_ignored(settings: SourceSettings, moment: datetime) -> bool:
    """True when `moment` is before the source's `ignore_before` (a naive `ignore_before` is taken as UTC)."""
    limit = settings.ignore_before
    if limit is None:
        return False
    return moment < (limit if limit.tzinfo else limit.replace(tzinfo=UTC))


def strip_etag(value: str | None) -> str | None:
    """The opaque part of an ETag header: `W/"abc"` and `"abc"` both give `abc`."""
    if not value:
        return None
    return value.removeprefix("W/").strip('"') or None


class HttpTransport:
    """One aiohttp session for one source: TLS, auth, classified errors, streamed downloads."""

    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle) -> None:
        self._settings = settings
        self._credentials = credentials
        self._throttle = throttle
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self._settings.verify_tls:
            return False
        return ssl.create_default_context(cafile=self._settings.ca_file)

    def session(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession binds to the running loop, which the constructor may not have.
        if self._session is None:
            creds = self._credentials
            headers: dict[str, str] = {}
            # aiohttp drops the header when a redirect leaves the origin, so credentials stay with the source.
            if creds.token:
                headers["Authorization"] = f"Bearer {creds.token}"
            elif creds.username:
                headers["Authorization"] = aiohttp.encode_basic_auth(creds.username, creds.password or "")
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=TIMEOUT, connector=aiohttp.TCPConnector(ssl=self._ssl())
            )
        return self._session

    @contextlib.asynccontextmanager
    async def request(
        self, method: str, url: str, what: str, accept: Collection[int] = (), **options: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to a request whose status is below 400 or in `accept`; anything else raises a classified
        `SourceError`."""
        try:
            async with self.session().request(method, url, **options) as response:
                error = None if response.status in accept else error_for_status(response.status, response.headers, what)
                if error is not None:
                    raise error
                yield response
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise error_for_exception(exc, what) from exc

    async def download(self, url: str, destination: Path, expected_size: int | None, what: str) -> int:
        """Stream `url` into the new file `destination`; it is removed unless exactly `expected_size` bytes came."""
        written = 0
        with removed_on_failure(destination), destination.open("wb") as handle:
            async with self.request("GET", url, what) as response:
                announced = response.content_length
                if expected_size is not None and announced is not None and announced != expected_size:
                    raise RemoteFileGone(f"{what}: now {announced} bytes, listed with {expected_size}")
                async for chunk in response.content.iter_chunked(CHUNK):
                    await self._throttle.consume(len(chunk))
                    await asyncio.to_thread(handle.write, chunk)
                    written += len(chunk)
            if expected_size is not None and written != expected_size:
                raise RemoteFileGone(f"{what}: received {written} of {expected_size} bytes")
        return written

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True, slots=True)
class Child:
    """One entry of a remote directory as the protocol describes it."""

    name: str
    url: str
    is_collection: bool
    size: int | None = None
    modified: datetime | None = None
    etag: str | None = None

    @property
    def version(self) -> str:
        if self.etag:
            return self.etag
        return f"{self.size}:{self.modified.isoformat() if self.modified else None}"


#: (path relative to the tree, file) for every file of a `.SAFE` tree. Aliases: inside the classes `list` is the method.
Members = list[tuple[str, Child]]
Children = list[Child]


def tree_version(members: Members) -> str:
    """Changes when any member is added, removed or changed."""
    lines = "\n".join(f"{path}\t{child.version}" for path, child in sorted(members, key=lambda item: item[0]))
    return "tree-" + hashlib.sha256(lines.encode()).hexdigest()[:32]


def _tree_member(name: str, is_collection: bool) -> bool:
    # Temporary members are kept so the walk can see that the tree is still being uploaded.
    return not is_hidden(name)


class DirectorySource(abc.ABC):
    """`list` and `fetch` for a directory tree reachable over HTTP; subclasses read one directory (`_children`)."""

    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle, root_url: str) -> None:
        self.name = settings.name
        self.settings = settings
        self.root_url = root_url if root_url.endswith("/") else root_url + "/"
        self.transport = HttpTransport(settings, credentials, throttle)

    @abc.abstractmethod
    async def _children(self, url: str, wanted: Wanted) -> Children:
        """The children of the directory at `url` (ending with `/`) that `wanted` accepts."""

    def _wanted(self, name: str, is_collection: bool) -> bool:
        if is_hidden(name) or is_temporary(name) or not self.settings.accepts(name):
            return False
        return not is_collection or is_product_dir(name)

    async def list(self) -> AsyncIterator[RemoteFile]:
        try:
            children = await self._children(self.root_url, self._wanted)
        except RemoteFileGone as exc:
            raise PermanentSourceError(f"source {self.name}: the source directory does not exist: {exc}") from None
        now = datetime.now(UTC)
        for child in children:
            entry = await self._tree_entry(child) if child.is_collection else self._file_entry(child)
            if entry is not None and self._eligible(entry, now):
                yield entry

    def _file_entry(self, child: Child) -> RemoteFile:
        return RemoteFile(path=child.name, name=child.name, size=child.size, modified=child.modified,
                          version=child.version)  # fmt: skip

    async def _tree_entry(self, child: Child) -> RemoteFile | None:
        try:
            members = await self._walk(child.url)
        except RemoteFileGone:
            return None  # removed since the parent was listed
        if not members:
            return None  # empty or still being uploaded
        sizes = [member.size for _, member in members]
        dates = [member.modified for _, member in members]
        return RemoteFile(
            path=child.name,
            name=child.name,
            size=None if None in sizes else sum(size for size in sizes if size is not None),
            modified=max((date for date in dates if date is not None), default=child.modified),
            version=tree_version(members),
            is_dir=True,
        )

    async def _walk(self, url: str, prefix: str = "") -> Members | None:
        """(relative path, file) for every file below `url`; None while a member is still a temporary upload."""
        members: Members = []
        for child in await self._children(url, _tree_member):
            relative = prefix + child.name
            if child.is_collection:
                below = await self._walk(child.url, relative + "/")
                if below is None:
                    return None
                members.extend(below)
            elif is_temporary(child.name):
                return None
            else:
                members.append((relative, child))
        return members

    def _eligible(self, entry: RemoteFile, now: datetime) -> bool:
        if entry.modified is None:
            return True  # nothing to judge by: the byte-count check at fetch still guards against partial files
        if before_ignored(self.settings, entry.modified):
            return False
        return now - entry.modified >= timedelta(seconds=self.settings.settle_seconds)

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        url = self.root_url + quote(entry.path)
        if not entry.is_dir:
            return await self.transport.download(url, destination, entry.size, f"{self.name}: GET {entry.path}")
        members = await self._walk(url + "/")
        if not members or tree_version(members) != entry.version:
            raise RemoteFileGone(f"{self.name}: {entry.path} changed since it was listed")
        total = 0
        with removed_on_failure(destination):
            for relative, member in members:
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                what = f"{self.name}: GET {entry.path}/{relative}"
                total += await self.transport.download(member.url, target, member.size, what)
        return total

    async def close(self) -> None:
        await self.transport.close()


def child_of(directory_url: str, href: str) -> tuple[str, str, bool] | None:
    """(name, absolute URL, is_directory) when `href` names a direct child of `directory_url`, else None.

    Parent links, sort links (`?C=N;O=D`), links elsewhere and names that would escape the destination are dropped.
    """
    target = urljoin(directory_url, href)
    parts = urlsplit(target)
    if parts.query or parts.fragment or not target.startswith(directory_url):
        return None
    rest = target[len(directory_url) :]
    is_directory = rest.endswith("/")
    segment = rest.removesuffix("/")
    name = unquote(segment)
    if not segment or "/" in segment or "/" in name or name in (".", ".."):
        return None
    return name, target, is_directory


class _AutoindexParser(HTMLParser):
    """Every link of an autoindex page with the text shown up to the next link (its listing row)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.rows.append((href, []))

    def handle_data(self, data: str) -> None:
        if self.rows:
            self.rows[-1][1].append(data)


def listing_rows(html: str) -> list[tuple[str, str]]:
    """(href, whitespace-normalised row text) for every link of an autoindex page."""
    parser = _AutoindexParser()
    parser.feed(html)
    parser.close()
    return [(href, " ".join("".join(text).split())) for href, text in parser.rows]


class HttpListingSource(DirectorySource):
    """`http(s)://host/dir/`: a directory published with autoindex (nginx, Apache); read-only, anonymous or auth."""

    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle) -> None:
        super().__init__(settings, credentials, throttle, settings.url)
        self._heads = asyncio.Semaphore(HEAD_CONCURRENCY)
        # HEAD answers by (file URL, listing row): this poll's and the previous poll's, so the cache stays bounded.
        self._current: dict[tuple[str, str], Child] = {}
        self._previous: dict[tuple[str, str], Child] = {}

    async def list(self) -> AsyncIterator[RemoteFile]:
        self._previous, self._current = self._current, {}
        async for entry in super().list():
            yield entry

    async def _children(self, url: str, wanted: Wanted) -> Children:
        async with self.transport.request("GET", url, f"{self.name}: listing {url}") as response:
            html = await response.text(errors="replace")
        found: Children = []
        pending: builtins.list[tuple[str, str, str]] = []
        for href, row in listing_rows(html):
            child = child_of(url, href)
            if child is None or not wanted(child[0], child[2]):
                continue
            name, target, is_directory = child
            if is_directory:
                found.append(Child(name, target, is_collection=True))
            else:
                pending.append((name, target, row))
        described = await asyncio.gather(*(self._describe(name, target, row) for name, target, row in pending))
        return found + [child for child in described if child is not None]

    async def _describe(self, name: str, url: str, row: str) -> Child | None:
        """The file as a HEAD reports it; None if it vanished since the listing."""
        key = (url, row)
        known = self._current.get(key) or self._previous.get(key)
        if known is None:
            try:
                async with self._heads, self.transport.request("HEAD", url, f"{self.name}: HEAD {url}") as response:
                    known = Child(name, url, False, response.content_length,
                                  http_date(response.headers.get("Last-Modified")),
                                  strip_etag(response.headers.get("ETag")))  # fmt: skip
            except RemoteFileGone:
                return None
        if row:  # a bare link without date or size says nothing about change: always ask again
            self._current[key] = known
        return known

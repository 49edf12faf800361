"""WebDAV sources: `webdav://host:port/dir/` (HTTP) or `webdavs://` (HTTPS), read with `PROPFIND Depth: 1`.

Depth 1 rather than infinity: servers commonly refuse infinite depth (nginx dav_ext among them), and the adapter
only needs the top level plus the `.SAFE` collections, which it walks one level at a time. Properties asked for:
getcontentlength, getlastmodified, getetag (many servers, nginx included, do not report it: the version is then
size and mtime) and resourcetype. Credentials are Basic (username/password) or a Bearer token.

Post-delivery actions (routing): DELETE of the file or collection, and MOVE into a folder of the source directory
(created with MKCOL, level by level) with `Overwrite: T`, so a previous copy of the same name there is replaced.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml import ElementTree as SafeElementTree

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.http import Child, Children, DirectorySource, Wanted, child_of, http_date, strip_etag
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle

if TYPE_CHECKING:
    # The type only: every parse goes through defusedxml (the answer comes from outside).
    from xml.etree.ElementTree import Element

DAV = "{DAV:}"
SCHEMES = {"webdav": "http", "webdavs": "https"}
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:getcontentlength/><D:getlastmodified/><D:getetag/><D:resourcetype/>"
    b"</D:prop></D:propfind>"
)


def http_url(url: str) -> str:
    """The http(s) URL of a webdav(s) source URL, ending with `/`."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise PermanentSourceError(f"{url!r} is not a webdav:// or webdavs:// URL")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((SCHEMES[parts.scheme], parts.netloc, path, "", ""))


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _succeeded(status: str | None) -> bool:
    """`HTTP/1.1 200 OK`; a missing status is taken as success (lenient servers)."""
    return status is None or status.split()[1:2] == ["200"]


def parse_multistatus(directory_url: str, body: bytes) -> Children:
    """The children a `207 Multi-Status` answer describes; the directory itself and foreign hrefs are left out."""
    try:
        root: Element = SafeElementTree.fromstring(body)
    except (SafeElementTree.ParseError, DefusedXmlException) as exc:
        raise PermanentSourceError(f"PROPFIND {directory_url}: the answer is not XML: {exc}") from None
    children: Children = []
    for response in root.iter(f"{DAV}response"):
        href = (response.findtext(f"{DAV}href") or "").strip()
        is_collection = response.find(f"{DAV}propstat/{DAV}prop/{DAV}resourcetype/{DAV}collection") is not None
        if is_collection and not href.endswith("/"):
            href += "/"  # some servers omit the slash on collections
        found = child_of(directory_url, href)
        if found is None:
            continue  # the directory itself, or outside it
        name, url, _ = found
        props = {
            child.tag.removeprefix(DAV): child.text
            for propstat in response.iter(f"{DAV}propstat")
            # Properties the server does not have come back in a 404 propstat of their own.
            if _succeeded(propstat.findtext(f"{DAV}status"))
            for prop in propstat.iter(f"{DAV}prop")
            for child in prop
        }
        children.append(
            Child(
                name=name,
                url=url,
                is_collection=is_collection,
                size=None if is_collection else _int(props.get("getcontentlength")),
                modified=http_date(props.get("getlastmodified")),
                etag=strip_etag(props.get("getetag")),
            )
        )
    return children


class WebDavSource(DirectorySource):
    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle) -> None:
        super().__init__(settings, credentials, throttle, http_url(settings.url))

    async def _children(self, url: str, wanted: Wanted) -> Children:
        headers = {"Depth": "1", "Content-Type": 'application/xml; charset="utf-8"'}
        what = f"{self.name}: PROPFIND {url}"
        async with self.transport.request("PROPFIND", url, what, headers=headers, data=PROPFIND_BODY) as response:
            if response.status != 207:
                raise PermanentSourceError(f"{what}: HTTP {response.status}; is this a WebDAV server?")
            body = await response.read()
        return [child for child in parse_multistatus(url, body) if wanted(child.name, child.is_collection)]

    def _url(self, path: str, is_collection: bool) -> str:
        # nginx (and RFC 4918's examples) name collections with a trailing slash; nginx refuses them without.
        return self.root_url + quote(path.strip("/")) + ("/" if is_collection else "")

    async def remove(self, entry: RemoteFile) -> None:
        """DELETE the entry (a routing post-delivery action; a collection with everything in it); already gone
        (404) is fine."""
        url = self._url(entry.path, entry.is_dir)
        with contextlib.suppress(RemoteFileGone):
            async with self.transport.request("DELETE", url, f"{self.name}: DELETE {url}"):
                pass

    async def move(self, entry: RemoteFile, folder: str) -> None:
        """MOVE the entry into `folder` (relative to the source directory, created if missing); already gone is
        fine."""
        path = ""
        for part in (part for part in folder.split("/") if part):
            path += part + "/"
            url = self._url(path, True)
            # 405: the collection exists already (MKCOL only creates).
            async with self.transport.request("MKCOL", url, f"{self.name}: MKCOL {url}", accept=(405,)):
                pass
        source = self._url(entry.path, entry.is_dir)
        destination = self._url(path + entry.name, entry.is_dir)
        headers = {"Destination": destination, "Overwrite": "T"}
        with contextlib.suppress(RemoteFileGone):
            async with self.transport.request("MOVE", source, f"{self.name}: MOVE {source} to {destination}",
                                              headers=headers):  # fmt: skip
                pass

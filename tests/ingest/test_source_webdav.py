"""The WebDAV source against the harness nginx dav endpoint (PROPFIND, Basic auth, HTTP and HTTPS)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import UNLIMITED
from auxip.ingest.sources.webdav import WebDavSource, http_url, parse_multistatus
from auxip_testing.http import WebDavServer

EOF_NAME = "S1B_OPER_AUX_RESORB_OPOD_20240101T001234_V20231231T225942_20240101T021242.EOF"
SAFE_NAME = "S1__AUX_WND_V20240101T060000_G20231231T060059.SAFE"
HOUR_AGO = time.time() - 3600


def write(path: Path, data: bytes, mtime: float = HOUR_AGO) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return data


def make_source(server: WebDavServer, folder: Path, password: str | None = None, **settings: Any) -> WebDavSource:
    scheme, port = ("webdavs", server.https_port) if settings.get("ca_file") else ("webdav", server.port)
    values: dict[str, Any] = {
        "name": "webdav-test",
        "url": f"{scheme}://{server.host}:{port}/{folder.name}/",
        "settle_seconds": 60,
        **settings,
    }
    credentials = Credentials(username=server.username, password=password or server.password)
    return WebDavSource(SourceSettings(**values), credentials, UNLIMITED)


async def entries(source: WebDavSource) -> dict[str, RemoteFile]:
    return {entry.name: entry async for entry in source.list()}


@pytest.fixture
def folder(webdav_server: WebDavServer, server_folder: Callable[..., Path]) -> Path:
    return server_folder(webdav_server.root)


@pytest.fixture
def tree(folder: Path) -> dict[str, bytes]:
    files = {
        EOF_NAME: os.urandom(2 * (1 << 20) + 5),
        f"{SAFE_NAME}/manifest.safe": b"<xfdu/>",
        f"{SAFE_NAME}/data/s1-aux-wnd.nc": os.urandom(90_000),
        ".hidden": b"x",
        "upload.EOF.tmp": b"partial",
        "other/inner.EOF": b"not a product directory",
    }
    for relative, data in files.items():
        write(folder / relative, data)
    write(folder / "young.EOF", b"new", mtime=time.time())
    return files


@pytest.mark.integration
async def test_lists_and_fetches_over_http(
    webdav_server: WebDavServer, folder: Path, tree: dict[str, bytes], tmp_path: Path
) -> None:
    source = make_source(webdav_server, folder)
    try:
        listed = await entries(source)
        assert sorted(listed) == sorted([EOF_NAME, SAFE_NAME])
        eof, safe = listed[EOF_NAME], listed[SAFE_NAME]
        assert await source.fetch(eof, tmp_path / "eof") == len(tree[EOF_NAME])
        assert await source.fetch(safe, tmp_path / "safe") == safe.size
    finally:
        await source.close()
    mtime = datetime.fromtimestamp(int(HOUR_AGO), UTC)
    # nginx reports no getetag: the version is size and mtime.
    assert (eof.size, eof.modified, eof.version) == (
        len(tree[EOF_NAME]),
        mtime,
        f"{len(tree[EOF_NAME])}:{mtime.isoformat()}",
    )
    assert safe.is_dir
    assert (tmp_path / "eof").read_bytes() == tree[EOF_NAME]
    assert (tmp_path / "safe" / "manifest.safe").read_bytes() == tree[f"{SAFE_NAME}/manifest.safe"]
    assert (tmp_path / "safe" / "data" / "s1-aux-wnd.nc").read_bytes() == tree[f"{SAFE_NAME}/data/s1-aux-wnd.nc"]


@pytest.mark.integration
async def test_https_with_the_private_ca(
    webdav_server: WebDavServer, folder: Path, tree: dict[str, bytes], tmp_path: Path
) -> None:
    source = make_source(webdav_server, folder, ca_file=str(webdav_server.ca))
    try:
        listed = await entries(source)
        await source.fetch(listed[EOF_NAME], tmp_path / "eof")
    finally:
        await source.close()
    assert sorted(listed) == sorted([EOF_NAME, SAFE_NAME])
    assert (tmp_path / "eof").read_bytes() == tree[EOF_NAME]


@pytest.mark.integration
async def test_safe_tree_still_uploading_is_not_listed(webdav_server: WebDavServer, folder: Path) -> None:
    write(folder / SAFE_NAME / "manifest.safe", b"<xfdu/>")
    write(folder / SAFE_NAME / "data" / "s1-aux-wnd.nc.part", b"half")
    source = make_source(webdav_server, folder)
    try:
        assert await entries(source) == {}
        (folder / SAFE_NAME / "data" / "s1-aux-wnd.nc.part").rename(folder / SAFE_NAME / "data" / "s1-aux-wnd.nc")
        os.utime(folder / SAFE_NAME / "data" / "s1-aux-wnd.nc", (HOUR_AGO, HOUR_AGO))
        assert sorted(await entries(source)) == [SAFE_NAME]
    finally:
        await source.close()


@pytest.mark.integration
async def test_wrong_password_is_permanent(webdav_server: WebDavServer, folder: Path) -> None:
    source = make_source(webdav_server, folder, password=f"wrong-{uuid.uuid4().hex}")
    try:
        with pytest.raises(PermanentSourceError, match="HTTP 401"):
            await entries(source)
    finally:
        await source.close()


def test_url_mapping() -> None:
    assert http_url("webdavs://dav.example.org:8443/in") == "https://dav.example.org:8443/in/"
    with pytest.raises(PermanentSourceError):
        http_url("http://dav.example.org/in/")


def test_multistatus_with_etags_absolute_hrefs_and_missing_properties() -> None:
    body = b"""<?xml version="1.0"?>
    <d:multistatus xmlns:d="DAV:">
      <d:response><d:href>https://dav.example.org/in/</d:href>
        <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>
        <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
      <d:response><d:href>https://dav.example.org/in/a%20b.EOF</d:href>
        <d:propstat><d:prop><d:getcontentlength>12</d:getcontentlength><d:getetag>W/"e-1"</d:getetag>
          <d:getlastmodified>Mon, 01 Jan 2024 00:00:00 GMT</d:getlastmodified><d:resourcetype/></d:prop>
        <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
      <d:response><d:href>/in/X.SAFE</d:href>
        <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>
        <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
        <d:propstat><d:prop><d:getetag/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>
      <d:response><d:href>/elsewhere/b.EOF</d:href></d:response>
    </d:multistatus>"""
    children = parse_multistatus("https://dav.example.org/in/", body)
    assert [(c.name, c.url, c.is_collection, c.size, c.etag) for c in children] == [
        ("a b.EOF", "https://dav.example.org/in/a%20b.EOF", False, 12, "e-1"),
        ("X.SAFE", "https://dav.example.org/in/X.SAFE/", True, None, None),
    ]
    assert children[0].modified == datetime(2024, 1, 1, tzinfo=UTC)

"""The HTTP(S) directory-listing source against the harness nginx (autoindex) and small aiohttp servers of its own."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone, TransientSourceError
from auxip.ingest.sources.credentials import NONE
from auxip.ingest.sources.http import HttpListingSource, listing_rows
from auxip.ingest.sources.retry_after import parse_retry_after
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import UNLIMITED, Throttle
from auxip_testing.http import HttpServer
from auxip_testing.process import free_port

EOF_NAME = "S1A_OPER_AUX_POEORB_OPOD_20240101T001234_V20231231T225942_20240102T005942.EOF"
SAFE_NAME = "S1A_AUX_CAL_V20190228T092500_G20190227T095512.SAFE"
HOUR_AGO = time.time() - 3600


def make_source(url: str, throttle: Throttle = UNLIMITED, **settings: Any) -> HttpListingSource:
    values: dict[str, Any] = {"name": "http-test", "url": url, "settle_seconds": 60, **settings}
    return HttpListingSource(SourceSettings(**values), NONE, throttle)


async def entries(source: HttpListingSource) -> dict[str, RemoteFile]:
    return {entry.name: entry async for entry in source.list()}


def write(path: Path, data: bytes, mtime: float = HOUR_AGO) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return data


def nginx_etag(path: Path) -> str:
    stat = path.stat()
    return f"{int(stat.st_mtime):x}-{stat.st_size:x}"


@pytest.fixture
def folder(http_server: HttpServer) -> Iterator[Path]:
    """A directory of its own under the shared server's root."""
    path = http_server.root / f"inbox-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def tree(folder: Path) -> dict[str, bytes]:
    """A plain file, a SAFE tree, and what must not be listed: hidden, temporary, young, other directories."""
    files = {
        EOF_NAME: os.urandom(3 * (1 << 20) + 17),  # several 1 MiB chunks
        f"{SAFE_NAME}/manifest.safe": b"<xfdu/>" * 50,
        f"{SAFE_NAME}/data/s1a-aux-cal.xml": os.urandom(70_000),
        f"{SAFE_NAME}/data/name with space.xml": b"spaced",
        ".hidden.EOF": b"hidden",
        "upload.EOF.part": b"partial",
        "notes.tmp": b"temporary",
        "plain-dir/inner.EOF": b"not a product directory",
    }
    for relative, data in files.items():
        write(folder / relative, data)
    write(folder / "young.EOF", b"just written", mtime=time.time())
    return files


@pytest.mark.integration
async def test_lists_files_and_safe_trees_with_exact_sizes(http_server: HttpServer, folder: Path, tree: dict) -> None:
    source = make_source(f"{http_server.http_url}{folder.name}/")
    try:
        listed = await entries(source)
    finally:
        await source.close()
    assert sorted(listed) == sorted([EOF_NAME, SAFE_NAME])
    eof = listed[EOF_NAME]
    assert (eof.path, eof.size, eof.is_dir, eof.checksum) == (EOF_NAME, len(tree[EOF_NAME]), False, None)
    assert eof.version == nginx_etag(folder / EOF_NAME)
    assert eof.modified == datetime.fromtimestamp(int(HOUR_AGO), UTC)
    safe = listed[SAFE_NAME]
    assert safe.is_dir
    assert safe.size == sum(len(data) for name, data in tree.items() if name.startswith(SAFE_NAME))


@pytest.mark.integration
async def test_fetches_file_and_tree_byte_identical(
    http_server: HttpServer, folder: Path, tree: dict, tmp_path: Path
) -> None:
    source = make_source(f"{http_server.http_url}{folder.name}/")
    try:
        listed = await entries(source)
        assert await source.fetch(listed[EOF_NAME], tmp_path / "eof") == len(tree[EOF_NAME])
        written = await source.fetch(listed[SAFE_NAME], tmp_path / "safe")
    finally:
        await source.close()
    assert (tmp_path / "eof").read_bytes() == tree[EOF_NAME]
    fetched = {path.relative_to(tmp_path / "safe").as_posix(): path.read_bytes()
               for path in (tmp_path / "safe").rglob("*") if path.is_file()}  # fmt: skip
    assert fetched == {name.removeprefix(f"{SAFE_NAME}/"): data for name, data in tree.items()
                       if name.startswith(SAFE_NAME)}  # fmt: skip
    assert written == sum(len(data) for data in fetched.values())


@pytest.mark.integration
async def test_include_and_ignore_before_filter(http_server: HttpServer, folder: Path, tree: dict) -> None:
    url = f"{http_server.http_url}{folder.name}/"
    only_safe = make_source(url, include=[r"\.SAFE$"])
    recent_only = make_source(url, ignore_before=datetime.now(UTC) - timedelta(minutes=5), settle_seconds=0)
    try:
        assert sorted(await entries(only_safe)) == [SAFE_NAME]
        assert sorted(await entries(recent_only)) == ["young.EOF"]
    finally:
        await only_safe.close()
        await recent_only.close()


@pytest.mark.integration
async def test_tree_changed_after_listing_is_gone(http_server: HttpServer, folder: Path, tree: dict, tmp_path: Path):
    source = make_source(f"{http_server.http_url}{folder.name}/")
    try:
        entry = (await entries(source))[SAFE_NAME]
        write(folder / SAFE_NAME / "data" / "late.xml", b"added after the listing")
        with pytest.raises(RemoteFileGone, match="changed since it was listed"):
            await source.fetch(entry, tmp_path / "safe")
    finally:
        await source.close()
    assert not (tmp_path / "safe").exists()


@pytest.mark.integration
async def test_https_with_the_private_ca(http_server: HttpServer, folder: Path, tree: dict, tmp_path: Path) -> None:
    source = make_source(f"{http_server.https_url}{folder.name}/", ca_file=str(http_server.ca))
    try:
        listed = await entries(source)
        await source.fetch(listed[EOF_NAME], tmp_path / "eof")
    finally:
        await source.close()
    assert sorted(listed) == sorted([EOF_NAME, SAFE_NAME])
    assert (tmp_path / "eof").read_bytes() == tree[EOF_NAME]


@pytest.mark.integration
async def test_https_without_the_ca_is_permanent(http_server: HttpServer, folder: Path) -> None:
    source = make_source(f"{http_server.https_url}{folder.name}/")
    try:
        with pytest.raises(PermanentSourceError, match="TLS certificate verification failed"):
            await entries(source)
    finally:
        await source.close()


@pytest.mark.integration
async def test_missing_directory_is_permanent_and_vanished_file_is_gone(
    http_server: HttpServer, folder: Path, tree: dict, tmp_path: Path
) -> None:
    missing = make_source(f"{http_server.http_url}{folder.name}-absent/")
    source = make_source(f"{http_server.http_url}{folder.name}/")
    try:
        with pytest.raises(PermanentSourceError, match="does not exist"):
            await entries(missing)
        entry = (await entries(source))[EOF_NAME]
        (folder / EOF_NAME).unlink()
        with pytest.raises(RemoteFileGone, match="HTTP 404"):
            await source.fetch(entry, tmp_path / "eof")
    finally:
        await missing.close()
        await source.close()
    assert not (tmp_path / "eof").exists()


@pytest.mark.integration
async def test_connection_refused_is_transient() -> None:
    source = make_source(f"http://127.0.0.1:{free_port()}/dir/")
    try:
        with pytest.raises(TransientSourceError) as raised:
            await entries(source)
    finally:
        await source.close()
    assert raised.value.retry_after is None


@pytest.mark.integration
async def test_bandwidth_limit_paces_the_transfer(http_server: HttpServer, folder: Path, tmp_path: Path) -> None:
    data = write(folder / EOF_NAME, os.urandom(150 * 1024))
    source = make_source(f"{http_server.http_url}{folder.name}/", throttle=Throttle(100 * 1024))
    try:
        entry = (await entries(source))[EOF_NAME]
        started = time.monotonic()
        await source.fetch(entry, tmp_path / "eof")
        elapsed = time.monotonic() - started
    finally:
        await source.close()
    assert (tmp_path / "eof").read_bytes() == data
    # 25 KiB of burst, then 125 KiB at 100 KiB/s.
    assert elapsed >= 1.1


# Servers of the tests' own (real HTTP on loopback) for answers nginx does not give on demand.

BODY = os.urandom(200_000)
ROW = "01-Jan-2024 00:00 200000"


@dataclass
class Scenario:
    """What the test server does; tests change it while the server runs."""

    row: str = ROW
    heads: int = 0
    behaviour: str = "whole"


SCENARIO = web.AppKey("scenario", Scenario)


async def _listing(request: web.Request) -> web.Response:
    row = request.app[SCENARIO].row
    html = f'<html><body><pre><a href="../">../</a>\n<a href="{EOF_NAME}">{EOF_NAME[:40]}..&gt;</a> {row}\n</pre>'
    return web.Response(text=html, content_type="text/html")


async def _file(request: web.Request) -> web.StreamResponse:
    request.app[SCENARIO].heads += request.method == "HEAD"
    behaviour = request.app[SCENARIO].behaviour
    if behaviour == "429":
        return web.Response(status=429, headers={"Retry-After": "7"})
    if behaviour == "503":
        return web.Response(status=503)
    if behaviour == "401":
        return web.Response(status=401)
    modified = {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "ETag": '"v1"'}
    if request.method == "HEAD" or behaviour == "whole":
        return web.Response(body=BODY, headers=modified)
    # Announce the whole length, send half of it, then drop the connection.
    response = web.StreamResponse(headers={"Content-Length": str(len(BODY)), **modified})
    await response.prepare(request)
    await response.write(BODY[: len(BODY) // 2])
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[Scenario, str]]:
    app = web.Application()
    app[SCENARIO] = Scenario()
    app.router.add_get("/dir/", _listing)
    app.router.add_route("*", f"/dir/{EOF_NAME}", _file)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield app[SCENARIO], str(server.make_url("/dir/"))
    finally:
        await server.close()


@pytest.mark.integration
@pytest.mark.parametrize(("behaviour", "retry_after"), [("429", 7.0), ("503", None)])
async def test_busy_server_is_transient_with_retry_after(
    own_server: tuple[Scenario, str], tmp_path: Path, behaviour: str, retry_after: float | None
) -> None:
    scenario, url = own_server
    source = make_source(url)
    try:
        entry = (await entries(source))[EOF_NAME]
        scenario.behaviour = behaviour
        with pytest.raises(TransientSourceError, match=f"HTTP {behaviour}") as raised:
            await source.fetch(entry, tmp_path / "eof")
    finally:
        await source.close()
    assert raised.value.retry_after == retry_after
    assert not (tmp_path / "eof").exists()


@pytest.mark.integration
async def test_refused_credentials_are_permanent(own_server: tuple[Scenario, str], tmp_path: Path) -> None:
    scenario, url = own_server
    scenario.behaviour = "401"
    source = make_source(url)
    try:
        with pytest.raises(PermanentSourceError, match="access refused"):
            await entries(source)
    finally:
        await source.close()


@pytest.mark.integration
async def test_disconnect_mid_transfer_is_gone(own_server: tuple[Scenario, str], tmp_path: Path) -> None:
    scenario, url = own_server
    source = make_source(url)
    try:
        entry = (await entries(source))[EOF_NAME]
        assert (entry.size, entry.version) == (len(BODY), "v1")
        scenario.behaviour = "truncate"
        with pytest.raises(RemoteFileGone, match="truncated"):
            await source.fetch(entry, tmp_path / "eof")
    finally:
        await source.close()
    assert not (tmp_path / "eof").exists()


@pytest.mark.integration
async def test_head_answers_are_reused_while_the_listing_row_is_unchanged(
    own_server: tuple[Scenario, str],
) -> None:
    scenario, url = own_server
    source = make_source(url)
    try:
        first = await entries(source)
        second = await entries(source)
        assert scenario.heads == 1
        scenario.row = "01-Jan-2024 00:01 200001"  # the listing shows a change: ask the file again
        await entries(source)
        assert scenario.heads == 2
    finally:
        await source.close()
    # The listing truncates the shown name; the href carries it whole.
    assert list(first) == list(second) == [EOF_NAME]


def test_listing_rows_keep_href_and_row_text() -> None:
    html = '<pre><a href="../">../</a>\n<a href="a%20b.EOF">a b.EOF</a>   02-Dec-2026 00:53     5000\n</pre>'
    assert listing_rows(html) == [("../", "../"), ("a%20b.EOF", "a b.EOF 02-Dec-2026 00:53 5000")]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (" 120 ", 120.0), ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
     ("soon", None), ("", None), (None, None)],
)  # fmt: skip
def test_retry_after_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected

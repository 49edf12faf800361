"""Post-delivery actions at the source (`remove`, `move`) of every adapter that has them, against the real servers.

One parametrised fixture gives each protocol the same view: a source adapter on a folder of its own, and `put`,
`read`, `names` working on the server's storage directly (the server's directory, or the bucket), so every test
runs unchanged for local, SFTP, FTP, FTPS, S3 and WebDAV sources.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auxip.ingest.sources.base import PermanentSourceError, PostDeliverySource, RemoteFile
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.factory import ADAPTERS
from auxip.ingest.sources.ftp import FtpSource
from auxip.ingest.sources.local import LocalSource
from auxip.ingest.sources.s3 import S3Source
from auxip.ingest.sources.settings import POST_DELIVERY_SCHEMES, SCHEMES, SourceSettings
from auxip.ingest.sources.sftp import SftpSource
from auxip.ingest.sources.throttle import UNLIMITED
from auxip.ingest.sources.webdav import WebDavSource

EOF_NAME = "S1A_OPER_AUX_RESORB_OPOD_20240101T001234_V20231231T210000_20240101T010000.EOF"
SAFE_NAME = "S1A_AUX_INS_V20190228T092500_G20190227T095512.SAFE"
SAFE_FILES = ("manifest.safe", "data/s1a-aux-ins.xml")
HOUR_AGO = time.time() - 3600
KINDS = ("local", "sftp", "ftp", "ftps", "s3", "webdav")


@dataclass
class Remote:
    """A source adapter on a fresh folder, and direct access to what the server stores there."""

    source: Any  # a Source that is also a PostDeliverySource
    put: Callable[[str, bytes], None]
    read: Callable[[str], bytes]
    #: Every file below the folder, as relative paths.
    names: Callable[[], set[str]]

    async def entries(self) -> dict[str, RemoteFile]:
        return {entry.name: entry async for entry in self.source.list()}

    def product(self) -> dict[str, bytes]:
        """An EOF file and a `.SAFE` folder of two files; returns relative path -> bytes."""
        files = {EOF_NAME: os.urandom(300_000)} | {f"{SAFE_NAME}/{name}": os.urandom(20_000) for name in SAFE_FILES}
        for path, data in files.items():
            self.put(path, data)
        return files


def _on_disk(
    folder: Path, *, shared_writable: bool = False
) -> tuple[Callable[[str, bytes], None], Callable[[], set[str]]]:
    def put(path: str, data: bytes) -> None:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        for item in (target, *target.parents):
            os.utime(item, (HOUR_AGO, HOUR_AGO))
            if item == folder:
                break
        if shared_writable:  # vsftpd's user is not root: it must be able to delete and rename here
            for parent in target.relative_to(folder).parents:
                (folder / parent).chmod(0o777)

    def read(path: str) -> bytes:
        return (folder / path).read_bytes()

    def names() -> set[str]:
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}

    return put, read, names


@pytest.fixture(params=KINDS)
async def remote(
    request: pytest.FixtureRequest, tmp_path: Path, server_folder: Callable[..., Path]
) -> AsyncIterator[Remote]:
    kind: str = request.param
    common: dict[str, Any] = {"name": f"{kind}-outbox", "settle_seconds": 60}
    if kind == "s3":
        server = request.getfixturevalue("s3_server")
        client = server.client()
        bucket = server.fresh_bucket_name("post")
        client.create_bucket(Bucket=bucket)
        settings = SourceSettings(url=f"s3://{bucket}/outbox", endpoint_url=server.endpoint_url,
                                  region=server.region, **{**common, "settle_seconds": 0})  # fmt: skip
        credentials = Credentials(access_key=server.access_key, secret_key=server.secret_key)

        def put(path: str, data: bytes) -> None:
            client.put_object(Bucket=bucket, Key=f"outbox/{path}", Body=data)

        def read(path: str) -> bytes:
            body: bytes = client.get_object(Bucket=bucket, Key=f"outbox/{path}")["Body"].read()
            return body

        def names() -> set[str]:
            listed = client.list_objects_v2(Bucket=bucket, Prefix="outbox/").get("Contents", [])
            return {item["Key"].removeprefix("outbox/") for item in listed}

        source: Any = S3Source(settings, credentials, UNLIMITED)
        try:
            yield Remote(source, put, read, names)
        finally:
            await source.close()
            client.close()
        return
    root = {
        "local": lambda: tmp_path,
        "sftp": lambda: request.getfixturevalue("sftp_server").root,
        "ftp": lambda: request.getfixturevalue("ftp_server").root,
        "ftps": lambda: request.getfixturevalue("ftps_server").root,
        "webdav": lambda: request.getfixturevalue("webdav_server").root,
    }[kind]()
    folder = server_folder(root, "outbox", 0o777)  # 0o777: vsftpd's user deletes and renames there
    disk_put, disk_read, disk_names = _on_disk(folder, shared_writable=kind in ("ftp", "ftps"))
    if kind == "local":
        source = LocalSource(SourceSettings(url=folder.as_uri(), **common), Credentials(), UNLIMITED)
    elif kind == "sftp":
        server = request.getfixturevalue("sftp_server")
        creds = Credentials(username=server.username, private_key=str(server.private_key),
                            known_hosts=str(server.known_hosts))  # fmt: skip
        url = f"sftp://{server.host}:{server.port}{folder}"
        source = SftpSource(SourceSettings(url=url, **common), creds, UNLIMITED)
    elif kind in ("ftp", "ftps"):
        server = request.getfixturevalue(f"{kind}_server")
        url = f"{kind}://{server.host}:{server.port}/{folder.relative_to(server.root)}"
        extra = {"ca_file": str(server.ca_file)} if server.ca_file else {}
        creds = Credentials(username=server.username, password=server.password)
        source = FtpSource(SourceSettings(url=url, **common, **extra), creds, UNLIMITED)
    else:
        server = request.getfixturevalue("webdav_server")
        url = f"webdav://{server.host}:{server.port}/{folder.name}/"
        creds = Credentials(username=server.username, password=server.password)
        source = WebDavSource(SourceSettings(url=url, **common), creds, UNLIMITED)
    try:
        yield Remote(source, disk_put, disk_read, disk_names)
    finally:
        await source.close()


@pytest.mark.integration
async def test_remove_deletes_a_file_and_a_safe_folder_and_again_is_fine(remote: Remote) -> None:
    remote.product()
    remote.put("unrelated.EOF", b"stays")
    entries = await remote.entries()
    assert set(entries) == {EOF_NAME, SAFE_NAME, "unrelated.EOF"}
    await remote.source.remove(entries[EOF_NAME])
    await remote.source.remove(entries[SAFE_NAME])
    assert remote.names() == {"unrelated.EOF"}
    # Redone after a crash (the action ran, its outcome was not committed): already gone is done.
    await remote.source.remove(entries[EOF_NAME])
    await remote.source.remove(entries[SAFE_NAME])
    assert set(await remote.entries()) == {"unrelated.EOF"}


@pytest.mark.integration
async def test_move_into_a_created_nested_folder_keeps_the_bytes_and_replaces_an_earlier_copy(
    remote: Remote,
) -> None:
    files = remote.product()
    entries = await remote.entries()
    await remote.source.move(entries[EOF_NAME], "done/2024")
    await remote.source.move(entries[SAFE_NAME], "done/2024")
    assert remote.names() == {f"done/2024/{path}" for path in files}
    assert all(remote.read(f"done/2024/{path}") == data for path, data in files.items())
    assert await remote.entries() == {}  # the done folder is not a product: never listed again
    await remote.source.move(entries[EOF_NAME], "done/2024")  # already moved: done

    # A new file of the same name, moved too, replaces the earlier copy in the done folder.
    remote.put(EOF_NAME, b"second version")
    await remote.source.move((await remote.entries())[EOF_NAME], "done/2024")
    assert remote.read(f"done/2024/{EOF_NAME}") == b"second version"
    assert EOF_NAME not in remote.names()


@pytest.mark.integration
async def test_ftp_delete_refused_by_the_server_is_an_error_not_gone(
    request: pytest.FixtureRequest, server_folder: Callable[..., Path]
) -> None:
    server = request.getfixturevalue("ftp_server")
    folder = server_folder(server.root, "outbox", 0o777)
    put, _read, names = _on_disk(folder, shared_writable=True)
    put(EOF_NAME, b"kept")
    folder.chmod(0o555)  # vsftpd's user may read, not delete: 550 while the file is still there
    url = f"ftp://{server.host}:{server.port}/{folder.relative_to(server.root)}"
    source = FtpSource(SourceSettings(name="ftp-ro", url=url, settle_seconds=60),
                       Credentials(username=server.username, password=server.password), UNLIMITED)  # fmt: skip
    try:
        entry = next(iter({e.name: e async for e in source.list()}.values()))
        with pytest.raises(PermanentSourceError, match=f"deleting {EOF_NAME}: refused: 550"):
            await source.remove(entry)
        with pytest.raises(PermanentSourceError, match=f"moving to done {EOF_NAME}: refused: 550"):
            await source.move(entry, "done")
    finally:
        await source.close()
        folder.chmod(0o777)
    assert names() == {EOF_NAME}


def test_adapters_implement_post_delivery_exactly_for_the_declared_schemes() -> None:
    """The configuration check (`POST_DELIVERY_SCHEMES`) and the adapters agree, both ways."""
    for scheme in SCHEMES:
        module, name = ADAPTERS[scheme]
        adapter = getattr(importlib.import_module(module), name)
        assert issubclass(adapter, PostDeliverySource) == (scheme in POST_DELIVERY_SCHEMES), scheme

"""An FTP directory as a target: `ftp://[user@]host[:port]/dir`, or `ftps://` for explicit TLS (AUTH TLS, PROT P).

The connections are the FTP source's (`auxip.ingest.sources.ftp.FtpSource`): aioftp for plain FTP, ftplib's FTP_TLS
in threads for FTPS (why is in that module), pooled up to `concurrency` with one transfer per control connection,
idle ones checked with NOOP, login refusals and TLS verification failures classified as permanent.

Delivery: STOR to a hidden temporary name in the target directory, SIZE of the upload (in binary mode, so the
server counts bytes as stored), then RNFR/RNTO onto the final name. Most servers (vsftpd, ProFTPD, Pure-FTPd)
rename over an existing file atomically; one that refuses gets a DELE of the old copy first. FTP has no standard
checksum command (HASH and XMD5 are rare; vsftpd has neither), so the size is all that is verified.
"""

# Plain FTP is one of the protocols consumers receive with; its use here is deliberate.

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import posixpath
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

import aioftp

from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.ftp import FtpSource, Session, _PlainSession, _replies, _Reply, _TlsSession
from auxip.ingest.sources.listing import CHUNK
from auxip.ingest.sources.throttle import UNLIMITED
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import Delivered, PermanentTargetError, TargetError, TransientTargetError
from auxip.routing.targets.local import (
    as_target_errors,
    check_size,
    checked_name,
    local_size,
    source_settings,
    temporary_name,
)

P = ParamSpec("P")
T = TypeVar("T")
CLEANUP_TIMEOUT = 10.0
#: Replies worth retrying besides 4xx: 552 is an exceeded storage allocation, which clears when space is freed.
TRANSIENT_CODES = frozenset({"552"})


class _Writer(Protocol):
    """The write side of one logged-in control connection; server error replies raise `_Reply`."""

    async def binary(self) -> None: ...

    async def store(self, local: Path, remote: str) -> None: ...

    async def size(self, remote: str) -> int | None:
        """Bytes of `remote`, None when the server says it does not exist (550)."""
        ...

    async def rename(self, source: str, destination: str) -> None: ...

    async def delete(self, remote: str) -> None: ...


class _PlainWriter:
    def __init__(self, client: aioftp.Client) -> None:
        self.client = client

    async def binary(self) -> None:
        with _replies():
            await self.client.command("TYPE I", "200")

    async def store(self, local: Path, remote: str) -> None:
        with _replies(), local.open("rb") as handle:
            # The stream's exit waits for the server's 226, so the upload is complete when this returns.
            async with self.client.upload_stream(remote) as stream:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    await stream.write(chunk)

    async def size(self, remote: str) -> int | None:
        try:
            with _replies():
                _, info = await self.client.command(f"SIZE {remote}", "213")
        except _Reply as exc:
            if exc.code == "550":
                return None
            raise
        return int(info[-1].strip())

    async def rename(self, source: str, destination: str) -> None:
        with _replies():
            await self.client.rename(source, destination)

    async def delete(self, remote: str) -> None:
        with _replies():
            await self.client.remove_file(remote)


class _TlsWriter:
    def __init__(self, ftp: ftplib.FTP_TLS) -> None:
        self.ftp = ftp

    async def binary(self) -> None:
        await self._call(self.ftp.voidcmd, "TYPE I")

    async def store(self, local: Path, remote: str) -> None:
        def upload() -> None:
            with local.open("rb") as handle:
                # storbinary closes the data connection's TLS cleanly and waits for the 226.
                self.ftp.storbinary(f"STOR {remote}", handle, CHUNK)

        await self._call(upload)

    async def size(self, remote: str) -> int | None:
        try:
            return await self._call(self.ftp.size, remote)
        except _Reply as exc:
            if exc.code == "550":
                return None
            raise

    async def rename(self, source: str, destination: str) -> None:
        await self._call(self.ftp.rename, source, destination)

    async def delete(self, remote: str) -> None:
        await self._call(self.ftp.delete, remote)

    @staticmethod
    async def _call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with _replies():
            return await asyncio.to_thread(function, *args, **kwargs)


def _writer(session: Session) -> _Writer:
    if isinstance(session, _PlainSession):
        return _PlainWriter(session.client)
    if isinstance(session, _TlsSession):
        return _TlsWriter(session.ftp)
    raise TypeError(f"unknown FTP session {session!r}")


class FtpTarget:
    def __init__(self, settings: TargetSettings, credentials: Credentials) -> None:
        with as_target_errors():
            self._pool = FtpSource(source_settings(settings), credentials, UNLIMITED)
        self.name = settings.name
        self.settings = settings
        self.root = self._pool.root

    @contextlib.asynccontextmanager
    async def _connection(self, doing: str, path: str) -> AsyncIterator[_Writer]:
        """A pooled connection; refusals of the body's commands are classified with the target's rules."""
        with as_target_errors():
            async with self._pool._session(doing, None) as session:
                try:
                    yield _writer(session)
                except _Reply as exc:
                    raise self._refused(f"{doing} {path}", exc) from None

    def _refused(self, doing: str, exc: _Reply) -> TargetError:
        where = f"{self._pool._where}: {doing}"
        if exc.code.startswith("4") or exc.code in TRANSIENT_CODES:
            return TransientTargetError(f"{where}: {exc}")
        # 550/553: permission denied, no such directory, a name the server does not accept.
        return PermanentTargetError(f"{where}: refused: {exc}")

    async def deliver(self, local: Path, name: str, md5: str) -> Delivered:
        checked_name(self.name, name)
        sent = local_size(self.name, local)
        final = posixpath.join(self.root, name)
        temp = posixpath.join(self.root, temporary_name(name))
        async with self._connection("delivering", final) as writer:
            try:
                await writer.store(local, temp)
                check_size(f"{self.name}: {temp}", sent, await writer.size(temp))
                await _replace(writer, temp, final)
            except BaseException:
                await _discard(writer, temp)
                raise
        return Delivered(location=final, size=sent, verified="size")

    async def exists(self, name: str) -> int | None:
        path = posixpath.join(self.root, checked_name(self.name, name))
        async with self._connection("checking", path) as writer:
            await writer.binary()  # SIZE counts bytes only in binary mode (vsftpd refuses it in ASCII mode)
            return await writer.size(path)

    async def close(self) -> None:
        await self._pool.close()


async def _replace(writer: _Writer, temp: str, final: str) -> None:
    try:
        await writer.rename(temp, final)
    except _Reply as exc:
        if not exc.code.startswith("5") or await writer.size(final) is None:
            raise
        # The server does not rename over a file: not atomic, but the final name never shows a partial copy.
        await writer.delete(final)
        await writer.rename(temp, final)


async def _discard(writer: _Writer, temp: str) -> None:
    """Remove a failed upload while the control connection still works; a dead one cannot be used for it."""
    with contextlib.suppress(_Reply, OSError, EOFError, TimeoutError):
        await asyncio.wait_for(writer.delete(temp), CLEANUP_TIMEOUT)

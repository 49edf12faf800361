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
import posixpath
from collections.abc import AsyncIterator
from pathlib import Path

from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.ftp import FtpSource, Reply, Session
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

CLEANUP_TIMEOUT = 10.0
#: Replies worth retrying besides 4xx: 552 is an exceeded storage allocation, which clears when space is freed.
TRANSIENT_CODES = frozenset({"552"})


class FtpTarget:
    def __init__(self, settings: TargetSettings, credentials: Credentials) -> None:
        with as_target_errors():
            self._pool = FtpSource(source_settings(settings), credentials, UNLIMITED)
        self.name = settings.name
        self.settings = settings
        self.root = self._pool.root

    @contextlib.asynccontextmanager
    async def _connection(self, doing: str, path: str) -> AsyncIterator[Session]:
        """A pooled connection; refusals of the body's commands are classified with the target's rules."""
        with as_target_errors():
            async with self._pool.session(doing, None) as session:
                try:
                    yield session
                except Reply as exc:
                    raise self._refused(f"{doing} {path}", exc) from None

    def _refused(self, doing: str, exc: Reply) -> TargetError:
        where = f"{self._pool.where}: {doing}"
        if exc.code.startswith("4") or exc.code in TRANSIENT_CODES:
            return TransientTargetError(f"{where}: {exc}")
        # 550/553: permission denied, no such directory, a name the server does not accept.
        return PermanentTargetError(f"{where}: refused: {exc}")

    async def deliver(self, local: Path, name: str, md5: str) -> Delivered:
        checked_name(self.name, name)
        sent = local_size(self.name, local)
        final = posixpath.join(self.root, name)
        temp = posixpath.join(self.root, temporary_name(name, md5))
        async with self._connection("delivering", final) as session:
            try:
                await session.store(local, temp)
                check_size(f"{self.name}: {temp}", sent, await session.size(temp))
                await _replace(session, temp, final)
            except BaseException:
                await _discard(session, temp)
                raise
        return Delivered(location=final, size=sent, verified="size")

    async def exists(self, name: str) -> int | None:
        path = posixpath.join(self.root, checked_name(self.name, name))
        async with self._connection("checking", path) as session:
            await session.binary()  # SIZE counts bytes only in binary mode (vsftpd refuses it in ASCII mode)
            return await session.size(path)

    async def close(self) -> None:
        await self._pool.close()


async def _replace(session: Session, temp: str, final: str) -> None:
    try:
        await session.rename(temp, final)
    except Reply as exc:
        if not exc.code.startswith("5") or await session.size(final) is None:
            raise
        # The server does not rename over a file: not atomic, but the final name never shows a partial copy.
        await session.delete(final)
        await session.rename(temp, final)


async def _discard(session: Session, temp: str) -> None:
    """Remove a failed upload while the control connection still works; a dead one cannot be used for it."""
    with contextlib.suppress(Reply, OSError, EOFError, TimeoutError):
        await asyncio.wait_for(session.delete(temp), CLEANUP_TIMEOUT)

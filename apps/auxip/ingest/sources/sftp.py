"""An SFTP directory (asyncssh): `sftp://[user@]host[:port]/abs/dir`, or `/~/dir` relative to the login directory.

The host key is always verified, against `known_hosts` from the credentials or the service user's
~/.ssh/known_hosts; ~/.ssh/config and ssh-agent are never consulted, so only the configured key or password is used.
One SSH connection with one SFTP session serves listing and every concurrent fetch: SFTP multiplexes requests, and
each transfer keeps many block reads in flight, which is what makes SFTP fast on long links.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

import asyncssh

from auxip.ingest.sources.base import PermanentSourceError, RemoteFile, RemoteFileGone, TransientSourceError
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.listing import (
    CHUNK,
    Tree,
    TreeFile,
    check_count,
    check_unchanged,
    complete_entry,
    is_hidden,
    is_product_dir,
    is_temporary,
    removed_on_failure,
)
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle

CONNECT_TIMEOUT = 15.0
#: Reads as large as the server allows (OpenSSH: 255 KiB), 64 in flight: the ~16 MiB outstanding cover the
#: bandwidth-delay product of a 1 Gbit/s, 100 ms link. Larger blocks would only be split into short reads.
BLOCK_SIZE = -1
MAX_REQUESTS = 64
#: asyncssh prefers ChaCha20; with AES-NI (any server CPU) AES-GCM is about twice as fast, measured on loopback.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


class SftpSource:
    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme != "sftp" or not parts.hostname:
            raise PermanentSourceError(f"{settings.name}: {settings.url!r} is not an sftp://host/dir URL")
        self.name = settings.name
        self.settings = settings
        self.host = parts.hostname
        self.port = parts.port or 22
        self.username = credentials.username or (unquote(parts.username) if parts.username else None)
        path = unquote(parts.path) or "/"
        self.root = (path[3:] or ".") if path.startswith("/~/") or path == "/~" else path
        self.credentials = credentials
        self.throttle = throttle
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._reconnecting = asyncio.Lock()

    @property
    def where(self) -> str:
        """`name (host:port)`, how errors name this server."""
        return f"{self.name} ({self.host}:{self.port})"

    async def client(self) -> asyncssh.SFTPClient:
        """The session, reconnecting when the connection was dropped (server restart, idle timeout, network)."""
        async with self._reconnecting:  # concurrent fetches after a drop share one new connection
            if self._sftp is not None and self._connection is not None and not self._connection.is_closed():
                return self._sftp
            self._drop()
            options = self._options()
            with self._classified("connecting"):
                self._connection = await asyncssh.connect(self.host, self.port, options=options)
                self._sftp = await self._connection.start_sftp_client()
            return self._sftp

    def _options(self) -> asyncssh.SSHClientConnectionOptions:
        credentials = self.credentials
        try:
            keys = [asyncssh.read_private_key(credentials.private_key)] if credentials.private_key else None
            known_hosts = asyncssh.read_known_hosts(credentials.known_hosts) if credentials.known_hosts else ()
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            raise PermanentSourceError(f"{self.where}: cannot load the key or known_hosts: {exc}") from None
        return asyncssh.SSHClientConnectionOptions(
            username=self.username,
            password=credentials.password,
            client_keys=keys,
            known_hosts=known_hosts,  # never None: that would switch host key verification off
            agent_path=None,
            config=None,
            connect_timeout=CONNECT_TIMEOUT,
            login_timeout=CONNECT_TIMEOUT,
            keepalive_interval=30,
            encryption_algs=CIPHERS,
        )

    @contextlib.contextmanager
    def _classified(
        self, doing: str, path: str | None = None, sftp: asyncssh.SFTPClient | None = None
    ) -> Iterator[None]:
        """asyncssh failures as source errors; `sftp`: the session used, forgotten if the failure was its connection."""
        where = f"{self.where}: {doing}" + (f" {path}" if path else "")
        try:
            yield
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection) as exc:
            self.forget(sftp)
            raise TransientSourceError(f"{where}: {exc.reason}") from None
        except asyncssh.SFTPNoSuchFile:
            if path is None:
                raise TransientSourceError(f"{where}: no such file or directory") from None
            raise RemoteFileGone(f"{where}: vanished at the source") from None
        except asyncssh.SFTPPermissionDenied as exc:
            raise PermanentSourceError(f"{where}: permission denied ({exc.reason})") from None
        except asyncssh.SFTPError as exc:
            raise TransientSourceError(f"{where}: {exc.reason}") from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise PermanentSourceError(f"{where}: host key not trusted by known_hosts ({exc.reason})") from None
        except asyncssh.PermissionDenied:
            raise PermanentSourceError(f"{where}: authentication refused for user {self.username!r}") from None
        except asyncssh.Error as exc:  # the SSH connection or channel failed
            self.forget(sftp)
            raise TransientSourceError(f"{where}: {exc.reason}") from None
        except (OSError, TimeoutError) as exc:
            # Connecting, or writing the local copy: other transfers on the connection carry on.
            raise TransientSourceError(f"{where}: {exc!r}") from None

    def forget(self, sftp: asyncssh.SFTPClient | None) -> None:
        """Drop the connection of `sftp` after it failed, so the next `client()` reconnects."""
        # Only the failed session: a concurrent call may already have replaced it with a working one.
        if sftp is not None and sftp is self._sftp:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._sftp = None

    async def list(self) -> AsyncIterator[RemoteFile]:
        sftp = await self.client()
        with self._classified("listing", None, sftp):
            entries = await self._scan(sftp)
        for entry in entries:
            yield entry

    async def _scan(self, sftp: asyncssh.SFTPClient) -> Sequence[RemoteFile]:
        now = time.time_ns()
        found: list[RemoteFile] = []
        for item in await sftp.readdir(self.root):
            name = str(item.filename)
            if is_hidden(name) or is_temporary(name) or not self.settings.accepts(name):
                continue
            path = posixpath.join(self.root, name)
            attrs = await _followed(sftp, path, item.attrs)
            content: TreeFile | Tree
            if attrs is None:
                continue
            if attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
                content = TreeFile(name, attrs.size or 0, _mtime_ns(attrs))
            elif attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY and is_product_dir(name):
                try:
                    content = await _walk(sftp, path, attrs)
                except asyncssh.SFTPNoSuchFile:
                    continue  # removed or renamed while listing: the next poll sees where it went
            else:
                continue
            entry = complete_entry(self.settings, name, content, now)
            if entry is not None:
                found.append(entry)
        return found

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        sftp = await self.client()
        remote = posixpath.join(self.root, entry.path)
        with removed_on_failure(destination), self._classified("fetching", entry.path, sftp):
            if entry.is_dir:
                attrs = await sftp.stat(remote)
                tree = await _walk(sftp, remote, attrs)
                check_unchanged(entry, tree)
                written = 0
                for item in tree.files:
                    written += await self._get(sftp, posixpath.join(remote, item.path), destination / item.path)
            else:
                written = await self._get(sftp, remote, destination)
            return check_count(entry, written)

    async def _get(self, sftp: asyncssh.SFTPClient, remote: str, target: Path) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.throttle.rate is None:
            await sftp.get(remote, target, block_size=BLOCK_SIZE, max_requests=MAX_REQUESTS, sparse=False)
            return target.stat().st_size
        written = 0
        async with sftp.open(remote, "rb", block_size=BLOCK_SIZE, max_requests=MAX_REQUESTS) as source:
            with open(target, "wb") as out:
                while chunk := cast(bytes, await source.read(CHUNK)):  # no encoding given: bytes
                    await self.throttle.consume(len(chunk))
                    out.write(chunk)  # page cache: far quicker than any throttled link
                    written += len(chunk)
        return written

    async def remove(self, entry: RemoteFile) -> None:
        """Delete the entry at the source (a routing post-delivery action); already gone is fine."""
        sftp = await self.client()
        remote = posixpath.join(self.root, entry.path)
        with self._classified("deleting", entry.path, sftp), contextlib.suppress(asyncssh.SFTPNoSuchFile):
            if entry.is_dir:
                await sftp.rmtree(remote)
            else:
                await sftp.remove(remote)

    async def move(self, entry: RemoteFile, folder: str) -> None:
        """Move the entry into `folder` (relative to the source directory, created if missing)."""
        sftp = await self.client()
        remote = posixpath.join(self.root, entry.path)
        target_dir = posixpath.join(self.root, folder)
        with self._classified("moving", entry.path, sftp):
            await sftp.makedirs(target_dir, exist_ok=True)
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.posix_rename(remote, posixpath.join(target_dir, entry.name))

    async def close(self) -> None:
        connection = self._connection
        self._drop()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.wait_closed()


def _mtime_ns(attrs: asyncssh.SFTPAttrs) -> int:
    if attrs.mtime_ns is not None:
        return int(attrs.mtime_ns)
    return int(attrs.mtime or 0) * 1_000_000_000


async def _followed(sftp: asyncssh.SFTPClient, path: str, attrs: asyncssh.SFTPAttrs) -> asyncssh.SFTPAttrs | None:
    """readdir reports links themselves; a link to a file or product folder counts as its target (None if dangling)."""
    if attrs.type != asyncssh.FILEXFER_TYPE_SYMLINK:
        return attrs
    try:
        return await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None


async def _walk(sftp: asyncssh.SFTPClient, top: str, attrs: asyncssh.SFTPAttrs) -> Tree:
    tree = Tree()
    tree.saw(_mtime_ns(attrs))
    pending = [""]
    while pending:
        relative = pending.pop()
        for item in await sftp.readdir(posixpath.join(top, relative)):
            name = str(item.filename)
            if name in (".", ".."):
                continue
            path = posixpath.join(relative, name)
            found = await _followed(sftp, posixpath.join(top, path), item.attrs)
            if found is None:
                continue
            if found.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                tree.saw(_mtime_ns(found))
                if not is_hidden(name):
                    pending.append(path)
            elif found.type == asyncssh.FILEXFER_TYPE_REGULAR:
                tree.add(path, found.size or 0, _mtime_ns(found))
    return tree

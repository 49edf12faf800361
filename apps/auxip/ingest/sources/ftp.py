"""An FTP directory: `ftp://[user@]host[:port]/dir`, or `ftps://` for explicit TLS (AUTH TLS, then PROT P data).

Plain FTP goes through aioftp. FTPS goes through the standard library's `ftplib.FTP_TLS`, in threads, because aioftp
cannot talk explicit FTPS to vsftpd (and other servers that accept the data connection only once the transfer
command arrives): it performs the data connection's TLS handshake while opening it, before sending RETR or LIST, so
the handshake waits for a server that waits for the command. ftplib sends the command first and wraps after; a
small subclass makes it resume the control connection's TLS session on data connections, which vsftpd requires by
default (`require_ssl_reuse`; checked by hand, the harness instance turns it off).

Connections are pooled, up to `concurrency`, each with its own control channel (FTP runs one transfer per control
connection). Passive mode only. Listings use MLSD where the server has it, else LIST, whose times have minute
precision at best: files then get their exact time through MDTM, folders are taken to be as new as the end of their
listed minute, so nothing settles early. Symbolic links are skipped: LIST describes the link, not its target.

The sessions also write (STOR, SIZE, RNFR/RNTO, DELE, MKD, RMD) for the FTP target and for post-delivery actions:
`remove` is DELE (a `.SAFE` folder depth first, then RMD), `move` is MKD of the folder then RNFR/RNTO. A 550 is
"gone" only when the parent's listing confirms it; otherwise it is a refusal reported as such.
"""

# Plain FTP is one of the protocols producers deliver with; its use here is deliberate.
# ruff: noqa: S321

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import posixpath
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import aioftp

from auxip.ingest.sources.base import (
    PermanentSourceError,
    RemoteFile,
    RemoteFileGone,
    SourceError,
    TransientSourceError,
)
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

P = ParamSpec("P")
T = TypeVar("T")
TIMEOUT = 30.0
#: An idle connection older than this is checked with NOOP before reuse: servers drop idle control connections.
IDLE_CHECK_SECONDS = 15.0
MINUTE_NS = 60 * 1_000_000_000
#: Only used for its LIST and MLSD line parsers, which ftplib lacks.
_PARSER = aioftp.Client()


@dataclass(frozen=True, slots=True)
class Listed:
    """One line of a directory listing."""

    name: str
    kind: str  # "file", "dir" or anything else (skipped)
    size: int
    modified_ns: int
    #: False for LIST times (minute or day precision).
    exact: bool


Sink = Callable[[bytes], Awaitable[None]]


class Session(Protocol):
    """One logged-in control connection; server error replies raise `Reply`.

    Reading serves the source; writing (store, size, rename, delete, directories) serves the FTP target
    (`auxip.routing.targets.ftp`) and the source's post-delivery actions.
    """

    async def listdir(self, path: str) -> list[Listed]: ...

    async def mdtm(self, path: str) -> int: ...

    async def retrieve(self, path: str, sink: Sink) -> None: ...

    async def noop(self) -> None: ...

    async def binary(self) -> None:
        """TYPE I: SIZE then counts bytes as stored (vsftpd refuses SIZE in ASCII mode)."""
        ...

    async def store(self, local: Path, remote: str) -> None:
        """Upload `local` as `remote`; complete (the server's 226 received) when this returns."""
        ...

    async def size(self, remote: str) -> int | None:
        """Bytes of `remote`, None when the server says it does not exist (550)."""
        ...

    async def rename(self, source: str, destination: str) -> None: ...

    async def delete(self, remote: str) -> None: ...

    async def make_directory(self, remote: str) -> None: ...

    async def remove_directory(self, remote: str) -> None: ...

    async def close(self) -> None: ...


class Reply(Exception):
    """The server answered a command with an error code (normalises aioftp's and ftplib's exceptions)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code} {text}".strip())
        self.code = code


def _listed(lines: Iterable[bytes], mlsd: bool) -> list[Listed]:
    found = []
    for line in lines:
        try:
            path, info = _PARSER.parse_mlsx_line(line) if mlsd else _PARSER.parse_list_line(line)
        except ValueError:
            continue  # not an entry: a "total" line, a banner
        # Without a time (an MLSD server hiding the fact) nothing could ever be called settled.
        if path.name in ("", ".", "..") or "link_dst" in info or "modify" not in info:
            continue
        found.append(Listed(path.name, info["type"], int(info.get("size", 0)), _ftp_time(info["modify"]), mlsd))
    return found


def _ftp_time(value: str) -> int:
    """`YYYYMMDDHHMMSS[.fff]`, UTC (MLSD, MDTM, and aioftp's rendering of LIST dates)."""
    whole, _, fraction = value.strip().partition(".")
    seconds = datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def _is_not_implemented(code: str) -> bool:
    return code in ("500", "501", "502")


class _PlainSession:
    def __init__(self, client: aioftp.Client) -> None:
        self.client = client
        self.mlsd = True

    @staticmethod
    async def open(host: str, port: int, user: str, password: str) -> _PlainSession:
        client = aioftp.Client(socket_timeout=TIMEOUT, connection_timeout=TIMEOUT, path_timeout=TIMEOUT)
        try:
            with replies():
                await client.connect(host, port)
                await client.login(user, password)
        except BaseException:
            client.close()
            raise
        return _PlainSession(client)

    async def listdir(self, path: str) -> list[Listed]:
        if self.mlsd:
            try:
                return await self._lines(f"MLSD {path}", mlsd=True)
            except Reply as exc:
                if not _is_not_implemented(exc.code):
                    raise
                self.mlsd = False
        return await self._lines(f"LIST {path}", mlsd=False)

    async def _lines(self, command: str, mlsd: bool) -> list[Listed]:
        lines = []
        with replies():
            async with self.client.get_stream(command, "1xx") as stream:
                while line := await stream.readline():
                    lines.append(line)
        return _listed(lines, mlsd)

    async def mdtm(self, path: str) -> int:
        with replies():
            _, info = await self.client.command(f"MDTM {path}", "213")
        return _ftp_time(info[-1])

    async def retrieve(self, path: str, sink: Sink) -> None:
        with replies():
            async with self.client.download_stream(path) as stream:
                async for block in stream.iter_by_block(CHUNK):
                    await sink(block)

    async def noop(self) -> None:
        with replies():
            await self.client.command("NOOP", "2xx")

    async def binary(self) -> None:
        with replies():
            await self.client.command("TYPE I", "200")

    async def store(self, local: Path, remote: str) -> None:
        with replies(), local.open("rb") as handle:
            # The stream's exit waits for the server's 226, so the upload is complete when this returns.
            async with self.client.upload_stream(remote) as stream:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    await stream.write(chunk)

    async def size(self, remote: str) -> int | None:
        try:
            with replies():
                _, info = await self.client.command(f"SIZE {remote}", "213")
        except Reply as exc:
            if exc.code == "550":
                return None
            raise
        return int(info[-1].strip())

    async def rename(self, source: str, destination: str) -> None:
        with replies():
            await self.client.rename(source, destination)

    async def delete(self, remote: str) -> None:
        with replies():
            await self.client.remove_file(remote)

    async def make_directory(self, remote: str) -> None:
        with replies():
            await self.client.command(f"MKD {remote}", "257")

    async def remove_directory(self, remote: str) -> None:
        with replies():
            await self.client.command(f"RMD {remote}", "250")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.quit(), 2)
        self.client.close()


class _ReusingFtpTls(ftplib.FTP_TLS):
    """Data connections resume the control connection's TLS session.

    vsftpd (`require_ssl_reuse`, on by default) and other servers refuse protected data connections that do not,
    as proof that the data peer is the authenticated client; ftplib alone opens a fresh session each time.
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        connection, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # plain socket, wrapped below
        session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
        return self.context.wrap_socket(connection, server_hostname=self.host, session=session), size


class _TlsSession:
    def __init__(self, ftp: ftplib.FTP_TLS) -> None:
        self.ftp = ftp
        self.mlsd = True

    @staticmethod
    async def open(host: str, port: int, user: str, password: str, context: ssl.SSLContext) -> _TlsSession:
        return _TlsSession(await asyncio.to_thread(_TlsSession._login, host, port, user, password, context))

    @staticmethod
    def _login(host: str, port: int, user: str, password: str, context: ssl.SSLContext) -> ftplib.FTP_TLS:
        ftp = _ReusingFtpTls(context=context, timeout=TIMEOUT)
        try:
            with replies():
                ftp.connect(host, port)
                ftp.auth()  # the certificate is verified here, before the password is sent
                ftp.login(user, password)
                ftp.prot_p()
        except BaseException:
            ftp.close()
            raise
        return ftp

    async def listdir(self, path: str) -> list[Listed]:
        return await asyncio.to_thread(self._listdir, path)

    def _listdir(self, path: str) -> list[Listed]:
        if self.mlsd:
            try:
                return _listed(self._lines(f"MLSD {path}"), mlsd=True)
            except Reply as exc:
                if not _is_not_implemented(exc.code):
                    raise
                self.mlsd = False
        return _listed(self._lines(f"LIST {path}"), mlsd=False)

    def _lines(self, command: str) -> list[bytes]:
        lines: list[bytes] = []
        with replies():
            self.ftp.retrlines(command, lambda line: lines.append(line.encode(self.ftp.encoding)))
        return lines

    async def mdtm(self, path: str) -> int:
        with replies():
            answer = await asyncio.to_thread(self.ftp.sendcmd, f"MDTM {path}")
        code, _, value = answer.partition(" ")
        if code != "213":
            raise Reply(code, value)
        return _ftp_time(value)

    async def retrieve(self, path: str, sink: Sink) -> None:
        with replies():
            connection = await asyncio.to_thread(self.ftp.transfercmd, f"RETR {path}")
            with connection, connection.makefile("rb") as data:
                while chunk := await asyncio.to_thread(data.read, CHUNK):
                    await sink(chunk)
                if isinstance(connection, ssl.SSLSocket):
                    # A clean TLS shutdown, as ftplib's own transfers do: a bare close can read as an aborted transfer.
                    await asyncio.to_thread(connection.unwrap)
            await asyncio.to_thread(self.ftp.voidresp)

    async def noop(self) -> None:
        with replies():
            await asyncio.to_thread(self.ftp.voidcmd, "NOOP")

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
        except Reply as exc:
            if exc.code == "550":
                return None
            raise

    async def rename(self, source: str, destination: str) -> None:
        await self._call(self.ftp.rename, source, destination)

    async def delete(self, remote: str) -> None:
        await self._call(self.ftp.delete, remote)

    async def make_directory(self, remote: str) -> None:
        await self._call(self.ftp.mkd, remote)

    async def remove_directory(self, remote: str) -> None:
        await self._call(self.ftp.rmd, remote)

    @staticmethod
    async def _call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with replies():
            return await asyncio.to_thread(function, *args, **kwargs)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.to_thread(self.ftp.quit), 2)
        self.ftp.close()


@contextlib.contextmanager
def replies() -> Iterator[None]:
    """Server error replies as `Reply`, whichever library raised them; other failures pass unchanged."""
    try:
        yield
    except aioftp.StatusCodeError as exc:
        raise Reply(str(exc.received_codes[-1]), " ".join(exc.info).strip()) from None
    except ftplib.Error as exc:
        text = str(exc)
        raise Reply(text[:3], text[4:]) from None


class FtpSource:
    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme not in ("ftp", "ftps") or not parts.hostname:
            raise PermanentSourceError(f"{settings.name}: {settings.url!r} is not an ftp:// or ftps://host/dir URL")
        self.name = settings.name
        self.settings = settings
        self.tls = parts.scheme == "ftps"
        self.host = parts.hostname
        self.port = parts.port or 21
        self.user = credentials.username or unquote(parts.username or "") or "anonymous"
        self.password = credentials.password or ""
        self.root = unquote(parts.path) or "/"
        self.throttle = throttle
        self._slots = asyncio.Semaphore(settings.concurrency)
        #: Logged-in connections not in use, with when they were last used.
        self._idle: list[tuple[Session, float]] = []

    @property
    def where(self) -> str:
        """`name (host:port)`, how errors name this server."""
        return f"{self.name} ({self.host}:{self.port})"

    @contextlib.asynccontextmanager
    async def session(self, doing: str, path: str | None) -> AsyncIterator[Session]:
        """A connection for one operation; back to the pool after success, closed after any failure."""
        async with self._slots:
            with self._classified(doing, path):
                session = await self._take()
                try:
                    yield session
                except BaseException:
                    await session.close()  # its state is unknown (a transfer may be half read)
                    raise
            self._idle.append((session, time.monotonic()))

    async def _take(self) -> Session:
        while self._idle:
            session, since = self._idle.pop()
            if time.monotonic() - since < IDLE_CHECK_SECONDS:
                return session
            try:
                await session.noop()
                return session
            except (Reply, OSError, EOFError, TimeoutError):
                await session.close()  # dropped while idle: connect afresh
        return await self._open()

    async def _open(self) -> Session:
        try:
            if self.tls:
                return await _TlsSession.open(self.host, self.port, self.user, self.password, self._tls_context())
            return await _PlainSession.open(self.host, self.port, self.user, self.password)
        except Reply as exc:
            if exc.code.startswith("53"):
                raise PermanentSourceError(f"{self.where}: login refused for user {self.user!r}: {exc}") from None
            raise

    def _tls_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=self.settings.ca_file)
        except OSError as exc:
            raise PermanentSourceError(f"{self.where}: cannot load ca_file {self.settings.ca_file}: {exc}") from None
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    @contextlib.contextmanager
    def _classified(self, doing: str, path: str | None) -> Iterator[None]:
        where = f"{self.where}: {doing}" + (f" {path}" if path else "")
        try:
            yield
        except SourceError:
            raise
        except Reply as exc:
            if exc.code == "550" and path is not None:
                raise RemoteFileGone(f"{where}: not available at the source ({exc})") from None
            if exc.code.startswith("4") or exc.code == "550":
                raise TransientSourceError(f"{where}: {exc}") from None
            raise PermanentSourceError(f"{where}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentSourceError(f"{where}: TLS certificate verification failed: {exc.verify_message}") from None
        except (OSError, EOFError, TimeoutError) as exc:
            raise TransientSourceError(f"{where}: {exc!r}") from None

    async def list(self) -> AsyncIterator[RemoteFile]:
        async with self.session("listing", None) as session:
            entries = await self._scan(session)
        for entry in entries:
            yield entry

    async def _scan(self, session: Session) -> Sequence[RemoteFile]:
        now = time.time_ns()
        found: list[RemoteFile] = []
        for item in await session.listdir(self.root):
            name = item.name
            if is_hidden(name) or is_temporary(name) or not self.settings.accepts(name):
                continue
            path = posixpath.join(self.root, name)
            content: TreeFile | Tree
            if item.kind == "file":
                content = TreeFile(name, item.size, _newest(item))
                settled = await self._settled_exactly(session, path, content, now)
            elif item.kind == "dir" and is_product_dir(name):
                content, settled = await _walk(session, path, _newest(item)), False
            else:
                continue
            if settled is None:
                continue  # vanished since the listing
            entry = complete_entry(self.settings, name, content, now, settled)
            if entry is not None:
                found.append(entry)
        return found

    async def _settled_exactly(self, session: Session, path: str, content: TreeFile, now: int) -> bool | None:
        """Whether MDTM proves settled a file LIST shows as too recent (None: it vanished meanwhile).

        The version keeps the listed time, so it does not change between polls that did and did not ask.
        """
        window = self.settings.settle_seconds * 1e9
        if now - content.mtime_ns >= window:
            return False  # settled by its listed time alone
        try:
            return now - await session.mdtm(path) >= window
        except Reply as exc:
            if exc.code == "550":
                return None
            raise

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        remote = posixpath.join(self.root, entry.path)
        with removed_on_failure(destination):
            async with self.session("fetching", entry.path) as session:
                if entry.is_dir:
                    tree = await _walk(session, remote, 0)
                    check_unchanged(entry, tree)
                    written = 0
                    for item in tree.files:
                        written += await self._retrieve(
                            session, posixpath.join(remote, item.path), destination / item.path
                        )
                else:
                    written = await self._retrieve(session, remote, destination)
            return check_count(entry, written)

    async def _retrieve(self, session: Session, remote: str, target: Path) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(target, "wb") as out:

            async def sink(chunk: bytes) -> None:
                nonlocal written
                await self.throttle.consume(len(chunk))
                out.write(chunk)  # page cache: far quicker than the network
                written += len(chunk)

            await session.retrieve(remote, sink)
        return written

    async def remove(self, entry: RemoteFile) -> None:
        """Delete the entry at the source (a routing post-delivery action); already gone is fine."""
        remote = posixpath.join(self.root, entry.path)
        async with self.session("deleting", entry.path) as session:
            try:
                if entry.is_dir:
                    await _remove_tree(session, remote)
                else:
                    await session.delete(remote)
            except Reply as exc:
                if exc.code != "550" or await _present(session, remote):
                    raise self._refused("deleting", entry.path, exc) from None

    async def move(self, entry: RemoteFile, folder: str) -> None:
        """Move the entry into `folder` (relative to the source directory, created if missing); RNFR/RNTO replaces
        a previous copy of the same name there on the usual servers (vsftpd, ProFTPD, Pure-FTPd)."""
        remote = posixpath.join(self.root, entry.path)
        target_dir = posixpath.join(self.root, folder)
        async with self.session("moving", entry.path) as session:
            await _make_directories(session, self.root, folder)
            try:
                await session.rename(remote, posixpath.join(target_dir, entry.name))
            except Reply as exc:
                if exc.code != "550" or await _present(session, remote):
                    raise self._refused(f"moving to {folder}", entry.path, exc) from None

    def _refused(self, doing: str, path: str, exc: Reply) -> SourceError:
        """A post-delivery command refused while the entry is still there: 4xx may pass, 5xx needs an operator."""
        message = f"{self.where}: {doing} {path}: refused: {exc}"
        return TransientSourceError(message) if exc.code.startswith("4") else PermanentSourceError(message)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for session, _ in idle:
            await session.close()


def _newest(item: Listed) -> int:
    """The latest instant the listed time allows: LIST truncates to the minute, so assume its end."""
    return item.modified_ns if item.exact else item.modified_ns + MINUTE_NS - 1


async def _walk(session: Session, top: str, top_ns: int) -> Tree:
    """The folder's files; an empty tree if it vanished (a listing skips it, a fetch reports it gone)."""
    tree = Tree()
    tree.saw(top_ns)
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            listing = await session.listdir(posixpath.join(top, relative))
        except Reply as exc:
            if exc.code != "550":
                raise
            return Tree()
        for item in listing:
            path = posixpath.join(relative, item.name)
            if item.kind == "dir":
                tree.saw(_newest(item))
                if not is_hidden(item.name):
                    pending.append(path)
            elif item.kind == "file":
                tree.add(path, item.size, _newest(item))
    return tree


async def _present(session: Session, remote: str) -> bool:
    """Whether `remote` exists, after a 550 that may mean "no such file" as well as "permission denied".

    Asked of the parent's listing: servers list a missing folder as empty rather than refuse it (vsftpd does).
    """
    parent, _, name = remote.rstrip("/").rpartition("/")
    try:
        listing = await session.listdir(parent or "/")
    except Reply as exc:
        if exc.code == "550":
            return False
        raise
    return any(item.name == name for item in listing)


async def _remove_tree(session: Session, top: str) -> None:
    """A `.SAFE` folder, depth first (FTP has no recursive delete). Entries LIST does not show (dot files on
    vsftpd, links) keep the folder from being removed: the RMD refusal then reports it."""
    for item in await session.listdir(top):
        path = posixpath.join(top, item.name)
        if item.kind == "dir":
            await _remove_tree(session, path)
        else:
            await session.delete(path)
    await session.remove_directory(top)


async def _make_directories(session: Session, root: str, folder: str) -> None:
    """`folder` below `root`, level by level; one that exists already is refused (550/521) and passed over."""
    path = root
    for part in (part for part in folder.split("/") if part):
        path = posixpath.join(path, part)
        try:
            await session.make_directory(path)
        except Reply as exc:
            if exc.code not in ("550", "521"):
                raise

"""Antivirus stage client: clamd's INSTREAM protocol over asyncio, on TCP or a Unix socket.

Every failure is classified for the pipeline: `ScannerUnavailable` means nothing was scanned and the file must wait;
`ScanError` means clamd (or whatever answered in its place) gave no verdict on this content. No reply other than
`stream: OK` ever counts as clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import stat
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_MIB = 1 << 20
_LENGTH = struct.Struct("!I")
_END_OF_STREAM = _LENGTH.pack(0)
# A clamd reply is one short line; anything longer without its NUL is not clamd.
_MAX_REPLY = 64 * 1024
_VERSION = re.compile(r"ClamAV (?P<engine>[^/\s]+)(?:/(?P<database>\d+)(?:/(?P<date>.+))?)?")
_FOUND = re.compile(r"stream: (?P<signature>\S+) FOUND")
# VERSION costs a connection, as much as scanning a small file; databases are reloaded at most hourly.
_VERSION_TTL_SECONDS = 60.0


class ScannerUnavailable(Exception):
    """clamd could not be reached, hung up, or did not answer in time: the content was NOT scanned."""


class ScanError(Exception):
    """clamd gave no verdict: an `... ERROR` reply, a reply this client does not know, or content it cannot scan."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Endpoint:
    """Where clamd listens: `host`/`port` for TCP, `path` for a Unix socket."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    @classmethod
    def parse(cls, url: str) -> _Endpoint:
        parts = urlsplit(url)
        if parts.scheme == "tcp":
            if not parts.hostname or parts.port is None:
                raise ValueError(f"clamd url {url!r} needs a host and a port: tcp://host:port")
            return cls(host=parts.hostname, port=parts.port)
        if parts.scheme == "unix":
            if parts.netloc or not parts.path:
                raise ValueError(f"clamd url {url!r} needs an absolute socket path: unix:///path/to/clamd.ctl")
            return cls(path=parts.path)
        raise ValueError(f"unsupported clamd url {url!r}; use tcp://host:port or unix:///path/to/clamd.ctl")


class ScannerSettings(BaseModel):
    """How to reach clamd and how hard to push it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: `tcp://host:port` or `unix:///path/to/clamd.ctl`.
    url: str
    #: One INSTREAM session, streaming included; PING and VERSION are bounded by the connect timeout instead.
    timeout_seconds: float = Field(300.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    #: Bytes per INSTREAM chunk; clamd rejects a single chunk larger than its StreamMaxLength.
    chunk_size: int = Field(_MIB, ge=4096, le=16 * _MIB)
    #: INSTREAM sessions in flight at once, over all callers of one scanner (each holds a clamd thread).
    max_concurrent_scans: int = Field(4, ge=1, le=256)

    @field_validator("url")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        _Endpoint.parse(value)
        return value


@dataclass(frozen=True)
class ScannerVersion:
    """`ClamAV <engine>/<database version>/<database date>`; the database parts are absent with a private database."""

    engine: str
    database_version: str | None
    database_date: str | None


@dataclass(frozen=True)
class ScanVerdict:
    clean: bool
    #: The signature that fired, e.g. `Auxip-Test-EICAR.UNOFFICIAL`.
    signature: str | None
    #: The infected file's path relative to the scanned directory (None when a single file or stream was scanned).
    infected_member: str | None
    engine_version: str
    #: The database version clamd reported at most a minute before the scan (None with a private database).
    signature_version: str | None
    scanned_bytes: int
    #: Time spent in INSTREAM sessions, not waiting for a free slot.
    elapsed_seconds: float


@dataclass(frozen=True)
class _Session:
    signature: str | None
    sent: int
    seconds: float


class ClamdScanner:
    def __init__(self, settings: ScannerSettings) -> None:
        self._settings = settings
        self._endpoint = _Endpoint.parse(settings.url)
        self._slots = asyncio.Semaphore(settings.max_concurrent_scans)
        self._version_lock = asyncio.Lock()
        self._version: tuple[ScannerVersion, float] | None = None

    async def ping(self) -> None:
        reply = await self._command("PING")
        if reply != "PONG":
            raise ScannerUnavailable(f"clamd at {self._settings.url} answered PING with {reply!r}")

    async def version(self) -> ScannerVersion:
        reply = await self._command("VERSION")
        match = _VERSION.fullmatch(reply)
        if match is None:
            raise ScanError(f"unexpected VERSION reply {reply!r}")
        return ScannerVersion(match["engine"], match["database"], match["date"])

    async def scan_path(self, path: Path) -> ScanVerdict:
        """Scan a file, or each regular file under a directory (symlinks are neither followed nor scanned).

        Files are scanned one at a time in path order, each in its own INSTREAM session, up to the first infected one.
        """
        members = await asyncio.to_thread(_regular_files, path)
        version = await self._recent_version()
        sent, seconds = 0, 0.0
        for file, member in members:
            async with contextlib.aclosing(_file_chunks(file, self._settings.chunk_size)) as chunks:
                session = await self._instream(chunks)
            sent, seconds = sent + session.sent, seconds + session.seconds
            if session.signature is not None:
                return _verdict(version, session.signature, member, sent, seconds)
        return _verdict(version, None, None, sent, seconds)

    async def scan_stream(self, chunks: AsyncIterable[bytes]) -> ScanVerdict:
        version = await self._recent_version()
        session = await self._instream(chunks)
        return _verdict(version, session.signature, None, session.sent, session.seconds)

    async def _recent_version(self) -> ScannerVersion:
        # The lock makes a burst of scans share one VERSION instead of each opening its own.
        async with self._version_lock:
            now = time.monotonic()
            if self._version is None or now - self._version[1] > _VERSION_TTL_SECONDS:
                self._version = (await self.version(), now)
            return self._version[0]

    async def _instream(self, chunks: AsyncIterable[bytes]) -> _Session:
        async with self._slots:
            started = time.perf_counter()
            # Not the bare asyncio.timeout idiom: a TimeoutError raised by `chunks` itself is the source's, not clamd's.
            deadline = asyncio.timeout(self._settings.timeout_seconds)
            try:
                async with deadline:
                    reply, sent = await self._stream(chunks)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise ScannerUnavailable(
                    f"clamd at {self._settings.url} gave no verdict within {self._settings.timeout_seconds} s"
                ) from None
            return _Session(_signature(reply), sent, time.perf_counter() - started)

    async def _stream(self, chunks: AsyncIterable[bytes]) -> tuple[str, int]:
        with contextlib.closing(await self._connect()) as connection:
            sent = await self._send_body(connection, chunks) if await connection.send(b"zINSTREAM\0") else 0
            return await connection.reply("INSTREAM"), sent

    async def _send_body(self, connection: _Connection, chunks: AsyncIterable[bytes]) -> int:
        """The chunks and the terminator; returns the bytes sent.

        Stops early when clamd hangs up, as it does right after answering once StreamMaxLength is exceeded: its reply
        is still there to read.
        """
        size, sent = self._settings.chunk_size, 0
        async for data in chunks:
            view = memoryview(data)
            # An empty chunk would end the stream early; larger ones are split to stay within clamd's limit.
            for start in range(0, len(view), size):
                piece = view[start : start + size]
                if not await connection.send(_LENGTH.pack(len(piece)), piece):
                    return sent
                sent += len(piece)
        await connection.send(_END_OF_STREAM)
        return sent

    async def _command(self, name: str) -> str:
        """A command that scans nothing: once connected, it must be answered within the connect timeout too."""
        with contextlib.closing(await self._connect()) as connection:
            try:
                async with asyncio.timeout(self._settings.connect_timeout_seconds):
                    await connection.send(f"z{name}\0".encode("ascii"))
                    return await connection.reply(name)
            except TimeoutError:
                raise ScannerUnavailable(
                    f"clamd at {self._settings.url} did not answer {name} "
                    f"within {self._settings.connect_timeout_seconds} s"
                ) from None

    async def _connect(self) -> _Connection:
        url, timeout = self._settings.url, self._settings.connect_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return _Connection(await _open_socket(self._endpoint), url)
        except TimeoutError:
            raise ScannerUnavailable(f"clamd at {url} did not accept a connection within {timeout} s") from None
        except OSError as exc:
            raise ScannerUnavailable(f"cannot connect to clamd at {url}: {exc}") from exc


async def _open_socket(endpoint: _Endpoint) -> socket.socket:
    loop = asyncio.get_running_loop()
    if endpoint.path is not None:
        targets: list[tuple[socket.AddressFamily, Any]] = [(socket.AF_UNIX, endpoint.path)]
    else:
        infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        targets = [(family, address) for family, _, _, _, address in infos]
    error: OSError = ConnectionError("no address to connect to")
    # Every address in turn: `localhost` may resolve to ::1 first while clamd listens on 127.0.0.1 only.
    for family, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        if family != socket.AF_UNIX:
            # Length prefixes and small files go out as small writes: Nagle would hold each one for an ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error


class _Connection:
    """One clamd connection on a bare non-blocking socket.

    Not asyncio streams: when clamd answers early and hangs up (StreamMaxLength exceeded), a transport whose write
    fails closes the socket and drops the reply still queued in the kernel; a bare socket can still read it.
    """

    def __init__(self, sock: socket.socket, url: str) -> None:
        self._sock = sock
        self._url = url

    async def send(self, *parts: bytes | memoryview) -> bool:
        """False when clamd has hung up (its reply, if any, is still to be read)."""
        loop = asyncio.get_running_loop()
        try:
            for part in parts:
                await loop.sock_sendall(self._sock, part)
        except (ConnectionResetError, BrokenPipeError):
            return False
        return True

    async def reply(self, command: str) -> str:
        """The NUL-terminated reply; what arrived before the peer hung up when the NUL never came."""
        loop = asyncio.get_running_loop()
        raw = bytearray()
        while b"\0" not in raw:
            if len(raw) > _MAX_REPLY:
                raise ScanError(f"{command} reply longer than {_MAX_REPLY} bytes without its terminator")
            try:
                data = await loop.sock_recv(self._sock, 4096)
            except OSError as exc:
                if raw:
                    break
                raise ScannerUnavailable(f"connection to clamd at {self._url} failed: {exc}") from exc
            if not data:
                break
            raw += data
        if not raw:
            raise ScannerUnavailable(f"clamd at {self._url} hung up without answering {command}")
        return raw.partition(b"\0")[0].decode("utf-8", errors="replace")

    def close(self) -> None:
        self._sock.close()


def _signature(reply: str) -> str | None:
    """None for clean; the signature when infected; ScanError for every other reply."""
    if reply == "stream: OK":
        return None
    if found := _FOUND.fullmatch(reply):
        return found["signature"]
    if reply.endswith(" ERROR"):
        raise ScanError(reply.removesuffix(" ERROR").strip())
    raise ScanError(f"unexpected INSTREAM reply {reply!r}")


def _verdict(
    version: ScannerVersion, signature: str | None, member: str | None, sent: int, seconds: float
) -> ScanVerdict:
    return ScanVerdict(
        clean=signature is None,
        signature=signature,
        infected_member=member,
        engine_version=version.engine,
        signature_version=version.database_version,
        scanned_bytes=sent,
        elapsed_seconds=seconds,
    )


def _regular_files(root: Path) -> list[tuple[Path, str | None]]:
    """The file itself, or every regular file under the directory with its relative path, sorted."""
    mode = os.lstat(root).st_mode
    if stat.S_ISREG(mode):
        return [(root, None)]
    if not stat.S_ISDIR(mode):
        raise ScanError(f"{root} is neither a regular file nor a directory (symlinks are not followed)")
    files: list[tuple[Path, str | None]] = []
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    file = Path(entry.path)
                    files.append((file, file.relative_to(root).as_posix()))
    return sorted(files, key=lambda item: item[1] or "")


def _open_and_read(path: Path, size: int) -> tuple[BinaryIO, bytes]:
    # O_NOFOLLOW: a file swapped for a symlink after the directory walk is still not followed.
    file = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb", buffering=0)
    try:
        return file, file.read(size)
    except BaseException:
        file.close()
        raise


async def _file_chunks(path: Path, size: int) -> AsyncGenerator[bytes, None]:
    """The file's bytes, read in a worker thread; opening and the first read share one hop (most files are small)."""
    file, data = await asyncio.to_thread(_open_and_read, path, size)
    try:
        # A short read of a regular file is its end: no extra hop to learn it.
        while data:
            yield data
            data = await asyncio.to_thread(file.read, size) if len(data) == size else b""
    finally:
        file.close()

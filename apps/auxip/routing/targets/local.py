"""A directory on this host (local disk or an NFS mount) as a target: `file:///abs/dir`; and the delivery rules every
adapter shares (temporary names, size and MD5 checks, source errors re-raised as target errors).

The file is copied in the kernel (as the local source does) to a hidden temporary name in the target directory,
flushed to disk, checked (size, and the MD5 of the bytes read back from the written file), then `os.replace`d onto
its final name: atomic within one filesystem, and it replaces a previous delivery of the same name. The directory is
never created: a missing one is a configuration error, not something a delivery should paper over.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from auxip.ingest import faults
from auxip.ingest.sources.base import SourceError, TransientSourceError
from auxip.ingest.sources.credentials import Credentials
from auxip.ingest.sources.listing import url_path
from auxip.ingest.sources.local import copy_in_kernel
from auxip.ingest.sources.settings import SourceSettings
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import (
    Delivered,
    PermanentTargetError,
    TargetError,
    TransientTargetError,
    VerificationError,
)

#: errno values that retrying cannot cure: a missing, unwritable or read-only directory.
PERMANENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR})


def temporary_name(name: str, md5: str) -> str:
    """Hidden and with a temporary suffix (pollers at the other end, AUXIP-like or ours, skip both), and the same for
    every attempt at one file: a delivery redone after a crash overwrites and renames what it, or a process killed
    mid-upload, left there, instead of leaving that copy behind under another name. Two routes delivering the same
    bytes to one directory at the same moment share it; the size and checksum checks catch an interleaving."""
    return f".{name}.{md5[:12]}.part"


def checked_name(target: str, name: str) -> str:
    """`name` if it is a plain file name: it is joined onto the target directory, so it must not walk out of it."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise PermanentTargetError(f"{target}: {name!r} is not a plain, visible file name")
    return name


def local_size(target: str, local: Path) -> int:
    try:
        return local.stat().st_size
    except OSError as exc:
        raise PermanentTargetError(f"{target}: cannot read the file to deliver {local}: {exc.strerror}") from None


def check_size(where: str, sent: int, found: int | None) -> None:
    if found != sent:
        raise VerificationError(f"{where}: {found} bytes at the target after upload, {sent} sent")


def check_md5(where: str, expected: str, found: str) -> None:
    if found.lower() != expected.lower():
        raise VerificationError(f"{where}: MD5 at the target {found}, expected {expected}")


def file_md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def source_settings(settings: TargetSettings) -> SourceSettings:
    """The target as the source adapters' connection code expects it (the same URL, TLS and credential fields)."""
    return SourceSettings(name=settings.name, url=settings.url, concurrency=settings.concurrency,
                          credentials=settings.credentials, verify_tls=settings.verify_tls, ca_file=settings.ca_file,
                          endpoint_url=settings.endpoint_url, region=settings.region)  # fmt: skip


@contextlib.contextmanager
def as_target_errors() -> Iterator[None]:
    """Failures classified by the sources' connection code, re-raised as the target classes (same verdict)."""
    try:
        yield
    except TargetError:
        raise
    except TransientSourceError as exc:
        raise TransientTargetError(str(exc), exc.retry_after) from None
    except SourceError as exc:  # permanent, or "gone": a missing directory, bucket or URL
        raise PermanentTargetError(str(exc)) from None


def os_error(message: str, exc: OSError) -> TargetError:
    if exc.errno in PERMANENT_ERRNOS:
        return PermanentTargetError(f"{message}: {exc.strerror}")
    return TransientTargetError(f"{message}: {exc.strerror or exc}")  # ENOSPC, EDQUOT, EIO, ESTALE on NFS


class DirectoryTarget:
    """Delivery into a directory of this host's filesystem tree; `LocalTarget` and `InboxTarget` say which."""

    def __init__(self, settings: TargetSettings, directory: Path) -> None:
        self.name = settings.name
        self.settings = settings
        self.directory = directory
        # to_thread's shared pool is larger; this keeps a slow NFS server from taking all of it.
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def deliver(self, local: Path, name: str, md5: str) -> Delivered:
        checked_name(self.name, name)
        async with self._slots:
            return await asyncio.to_thread(self._deliver, local, name, md5)

    def _deliver(self, local: Path, name: str, md5: str) -> Delivered:
        final = self.directory / name
        if not self.directory.is_dir():
            raise PermanentTargetError(f"{self.name}: the target directory {self.directory} does not exist")
        temp = self.directory / temporary_name(name, md5)
        try:
            sent = _copy(self.name, local, temp)
            where = f"{self.name}: {final}"
            check_size(where, sent, temp.stat().st_size)
            verified = "size"
            if self.settings.verify_checksum:
                check_md5(where, md5, file_md5(temp))
                verified = "size+md5"
            faults.point("deliver.uploaded")
            os.replace(temp, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise os_error(f"{self.name}: writing {final}", exc) from None
            raise
        _sync_directory(self.directory)
        return Delivered(location=str(final), size=sent, verified=verified)

    async def exists(self, name: str) -> int | None:
        path = self.directory / checked_name(self.name, name)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise os_error(f"{self.name}: stat {path}", exc) from None

    async def close(self) -> None:
        return None


class LocalTarget(DirectoryTarget):
    def __init__(self, settings: TargetSettings, credentials: Credentials) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise PermanentTargetError(f"{settings.name}: {settings.url!r} is not a file:///absolute/dir URL")
        super().__init__(settings, Path(url_path(settings.url)))


def _copy(target: str, local: Path, temp: Path) -> int:
    try:
        source = open(local, "rb")  # noqa: SIM115 - closed below, and told apart from the target's failures
    except OSError as exc:
        raise PermanentTargetError(f"{target}: cannot read the file to deliver {local}: {exc.strerror}") from None
    with source:
        # What an earlier, killed attempt left at this name goes first; then a file of our own (O_EXCL): a concurrent
        # delivery of the same bytes that still writes its copy keeps its own inode, and one of the two renames fails
        # and is retried, rather than one truncating the file the other is about to rename.
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            copied = copy_in_kernel(source.fileno(), descriptor)
            # On disk before the rename, or a crash could leave the final name holding a truncated file.
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return copied


def _sync_directory(directory: Path) -> None:
    """Makes the rename durable; best effort, as some network filesystems refuse to open a directory for fsync."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

"""A directory on this host (local disk or an NFS mount): `file:///abs/dir`."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from asyncinotify import Inotify, Mask

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
    url_path,
)
from auxip.ingest.sources.listing import remove as remove_path
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle


class LocalSource:
    def __init__(self, settings: SourceSettings, credentials: Credentials, throttle: Throttle) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise PermanentSourceError(f"{settings.name}: {settings.url!r} is not a file:///absolute/dir URL")
        self.name = settings.name
        self.settings = settings
        self.root = Path(url_path(settings.url))
        self.throttle = throttle
        #: Name → wall clock (ns) of the last close-after-write or rename-into the directory that inotify reported.
        self._closed: dict[str, int] = {}

    async def list(self) -> AsyncIterator[RemoteFile]:
        for entry in await asyncio.to_thread(self._scan):
            yield entry

    def _scan(self) -> Sequence[RemoteFile]:
        now = time.time_ns()
        try:
            with os.scandir(self.root) as listing:
                found = [item for item in listing if not is_hidden(item.name) and not is_temporary(item.name)]
        except OSError as exc:
            raise _classified(f"{self.name}: cannot list {self.root}", exc) from exc
        entries: list[RemoteFile] = []
        present: set[str] = set()
        for item in found:
            present.add(item.name)
            if not self.settings.accepts(item.name):
                continue
            content = _stat_entry(item)
            if content is None:
                continue
            # The close must postdate every change, or the producer reopened the file since.
            closed_at = self._closed.get(item.name)
            closed = closed_at is not None and closed_at >= (
                content.newest_ns if isinstance(content, Tree) else content.mtime_ns
            )
            entry = complete_entry(self.settings, item.name, content, now, closed)
            if entry is not None:
                entries.append(entry)
        for gone in self._closed.keys() - present:
            del self._closed[gone]
        return entries

    async def changes(self) -> AsyncIterator[None]:
        """Yields whenever a file is closed after writing, or something is renamed into the directory.

        Where inotify cannot watch (no inotify, watch limit reached) this never yields and polling alone applies.
        On NFS inotify only reports changes made through this host, so remote producers are found by polling too.
        """
        try:
            inotify = Inotify()
        except OSError:
            await asyncio.Event().wait()
            return
        with inotify:
            try:
                inotify.add_watch(self.root, Mask.CLOSE_WRITE | Mask.MOVED_TO | Mask.ONLYDIR)
            except OSError:
                await asyncio.Event().wait()
                return
            async for event in inotify:
                if event.name is None:
                    continue
                name = str(event.name)
                if is_hidden(name) or is_temporary(name):
                    continue
                self._closed[name] = time.time_ns()
                yield None

    async def fetch(self, entry: RemoteFile, destination: Path) -> int:
        source = self.root / entry.path
        with removed_on_failure(destination):
            if entry.is_dir:
                tree = await asyncio.to_thread(_walk, source)
                check_unchanged(entry, tree)
                written = 0
                for item in tree.files:
                    written += await self._copy(source / item.path, destination / item.path)
            else:
                written = await self._copy(source, destination)
            return check_count(entry, written)

    async def _copy(self, source: Path, target: Path) -> int:
        try:
            if self.throttle.rate is None:
                return await asyncio.to_thread(_copy_file, source, target)
            return await self._copy_throttled(source, target)
        except FileNotFoundError as exc:
            if exc.filename != str(source):
                raise
            raise RemoteFileGone(f"{self.name}: {source} vanished") from None
        except OSError as exc:
            raise _classified(f"{self.name}: copying {source} failed", exc) from exc

    async def _copy_throttled(self, source: Path, target: Path) -> int:
        src, dst = await asyncio.to_thread(_open_pair, source, target)
        written = 0
        with src, dst:
            while chunk := await asyncio.to_thread(src.read, CHUNK):
                await self.throttle.consume(len(chunk))
                await asyncio.to_thread(dst.write, chunk)
                written += len(chunk)
        return written

    async def remove(self, entry: RemoteFile) -> None:
        """Delete the entry at the source (a routing post-delivery action); already gone is fine."""
        await asyncio.to_thread(remove_path, self.root / entry.path)

    async def move(self, entry: RemoteFile, folder: str) -> None:
        """Move the entry into `folder` (relative to the source directory, created if missing)."""

        def move() -> None:
            target = self.root / folder
            target.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.root / entry.path, target / entry.name)

        await asyncio.to_thread(move)

    async def close(self) -> None:
        self._closed.clear()


def _stat_entry(item: os.DirEntry[str]) -> TreeFile | Tree | None:
    try:
        if item.is_file():
            stat = item.stat()
            return TreeFile(item.name, stat.st_size, stat.st_mtime_ns)
        if item.is_dir() and is_product_dir(item.name):
            return _walk(Path(item.path))
    except FileNotFoundError:
        pass  # renamed or deleted while listing: the next poll sees where it went
    return None


def _walk(top: Path) -> Tree:
    tree = Tree()
    try:
        tree.saw(top.stat().st_mtime_ns)
    except FileNotFoundError:
        return tree
    pending = [top]
    while pending:
        folder = pending.pop()
        with contextlib.suppress(FileNotFoundError), os.scandir(folder) as listing:
            for item in listing:
                stat = item.stat()
                if item.is_dir():
                    tree.saw(stat.st_mtime_ns)
                    if not is_hidden(item.name):
                        pending.append(Path(item.path))
                elif item.is_file():
                    tree.add(Path(item.path).relative_to(top).as_posix(), stat.st_size, stat.st_mtime_ns)
    return tree


def _open_pair(source: Path, target: Path) -> tuple[BinaryIO, BinaryIO]:
    src = open(source, "rb")  # noqa: SIM115 - the caller closes both
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return src, open(target, "wb")
    except BaseException:
        src.close()
        raise


def _copy_file(source: Path, target: Path) -> int:
    src, dst = _open_pair(source, target)
    with src, dst:
        return copy_in_kernel(src.fileno(), dst.fileno())


def copy_in_kernel(src: int, dst: int) -> int:
    """copy_file_range as `cp` does (no copy through user space; reflinks where the filesystem can), else sendfile."""
    copied = 0
    try:
        while count := os.copy_file_range(src, dst, 1 << 30):
            copied += count
    except OSError as exc:
        if copied or exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
        while count := os.sendfile(dst, src, None, 1 << 30):
            copied += count
    return copied


def _classified(message: str, exc: OSError) -> PermanentSourceError | TransientSourceError:
    # Missing or unreadable by configuration: retrying cannot help. Anything else (EIO, ESTALE on NFS) may pass.
    if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOTDIR):
        return PermanentSourceError(f"{message}: {exc.strerror}")
    return TransientSourceError(f"{message}: {exc.strerror or exc}")

"""Listing rules every directory-like source shares: upload names in progress, completeness, `.SAFE` folders.

A producer uploads under a temporary or hidden name and renames when done; an entry is complete once unchanged for
`settle_seconds` (or when the caller knows it is, e.g. from an inotify close). A `.SAFE` folder is one product whose
version changes with any of its files.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from auxip.ingest.sources.base import RemoteFile, RemoteFileGone
from auxip.ingest.sources.settings import SourceSettings

CHUNK = 1024 * 1024
PRODUCT_DIR_SUFFIX = ".SAFE"
#: Producers upload under one of these names, then rename: such a file is never complete.
TEMPORARY_SUFFIXES = (".part", ".tmp", ".filepart", "~")


def is_temporary(name: str) -> bool:
    return name.endswith(TEMPORARY_SUFFIXES)


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def is_product_dir(name: str) -> bool:
    return name.endswith(PRODUCT_DIR_SUFFIX)


@dataclass(frozen=True, slots=True)
class TreeFile:
    """A regular file of a product: its path relative to the product (its own name for a plain file)."""

    path: str
    size: int
    mtime_ns: int


@dataclass(slots=True)
class Tree:
    """What a walk of a `.SAFE` folder found: the content to fetch and whether it is still being written."""

    files: list[TreeFile] = field(default_factory=list)
    #: Newest mtime of anything in the tree, hidden files and sub-folders included: any change resets the settle clock.
    newest_ns: int = 0
    #: A temporary upload name inside the folder: the producer is not done.
    busy: bool = False

    def saw(self, mtime_ns: int) -> None:
        self.newest_ns = max(self.newest_ns, mtime_ns)

    def add(self, path: str, size: int, mtime_ns: int) -> None:
        self.saw(mtime_ns)
        name = path.rpartition("/")[2]
        if is_temporary(name):
            self.busy = True
        elif not is_hidden(name):
            self.files.append(TreeFile(path, size, mtime_ns))

    def version(self) -> str:
        digest = hashlib.sha256()
        for item in sorted(self.files, key=lambda item: item.path):
            digest.update(f"{item.path}\0{item.size}\0{item.mtime_ns}\n".encode())
        return f"{sum(item.size for item in self.files)}:{digest.hexdigest()[:32]}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def complete_entry(
    settings: SourceSettings, path: str, content: TreeFile | Tree, now_ns: int, settled: bool = False
) -> RemoteFile | None:
    """The entry to list, or None while it may still change (or is older than `ignore_before`).

    `settled`: the caller knows the entry is complete without waiting (an inotify close, an exact server time).
    """
    if isinstance(content, Tree):
        if content.busy or not content.files:
            return None
        newest, size, version = content.newest_ns, sum(item.size for item in content.files), content.version()
    else:
        newest, size, version = content.mtime_ns, content.size, f"{content.size}:{content.mtime_ns}"
    modified = datetime.fromtimestamp(newest / 1e9, UTC)
    if settings.ignore_before is not None and modified < _utc(settings.ignore_before):
        return None
    if not settled and now_ns - newest < settings.settle_seconds * 1e9:
        return None
    name = path.rpartition("/")[2]
    return RemoteFile(path, name, size, modified, version, is_dir=isinstance(content, Tree))


def check_count(entry: RemoteFile, written: int) -> int:
    if entry.size is not None and written != entry.size:
        raise RemoteFileGone(f"{entry.path}: {written} bytes transferred but {entry.size} listed (changed at source)")
    return written


def check_unchanged(entry: RemoteFile, tree: Tree) -> None:
    if not tree.files or tree.version() != entry.version:
        raise RemoteFileGone(f"{entry.path}: the folder changed or vanished since it was listed")


def remove(destination: Path) -> None:
    if destination.is_dir() and not destination.is_symlink():
        shutil.rmtree(destination, ignore_errors=True)
    else:
        destination.unlink(missing_ok=True)


@contextlib.contextmanager
def removed_on_failure(destination: Path) -> Iterator[None]:
    """A failed fetch leaves nothing at `destination`: the pipeline must never mistake a partial copy for a product."""
    try:
        yield
    except BaseException:
        remove(destination)
        raise


def url_path(url: str) -> str:
    return unquote(urlsplit(url).path)

"""Safety inspection and extraction of the archives sources deliver (zip, tar, tgz, gz).

Inputs come from outside: every entry's name and type is checked before any of its bytes land on disk, sizes are
checked first as declared and then again on the bytes actually decompressed (declared sizes can lie), links and
special files are refused outright, and nothing is ever written outside the destination.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field

CHUNK = 1 << 20
GIB = 1 << 30

Container = Literal["zip", "tar", "tgz", "gz"]
ArchiveErrorCode = Literal[
    "path-traversal",
    "absolute-path",
    "link-escape",
    "special-file",
    "zip-bomb-ratio",
    "zip-bomb-size",
    "too-many-entries",
    "duplicate-entry",
    "corrupt-archive",
    "empty-archive",
    "unexpected-layout",
]

# What the readers raise on damaged or hostile input. OSError is deliberately absent (but for gzip's): a full disk
# while writing is not the archive's fault.
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    ValueError,
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ENCRYPTED = 0x1


class ArchiveLimits(BaseModel):
    """Bounds on what one archive may expand to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Uncompressed bytes, all entries together.
    max_total_size: int = Field(16 * GIB, gt=0)
    #: Uncompressed bytes over the archive's size on disk.
    max_ratio: float = Field(200.0, gt=1)
    max_entries: int = Field(100_000, gt=0)
    #: One zip entry's uncompressed over compressed size (deflate tops out near 1032).
    max_entry_ratio: float = Field(500.0, gt=1)
    #: Ratios are enforced only past this many uncompressed bytes: small text compresses well and is no bomb.
    ratio_min_size: int = Field(CHUNK, ge=0)


class UnsafeArchive(Exception):
    """The input is refused; `code` is machine-readable (the rejection reason), `detail` says which entry and why."""

    def __init__(self, code: ArchiveErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ArchiveErrorCode = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    #: Normalised relative path, "/"-separated (no "." components, no trailing slash).
    path: str
    is_dir: bool
    #: Bytes actually decompressed (0 for a directory).
    size: int


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    entries: tuple[ArchiveEntry, ...]
    #: Uncompressed bytes of all entries together, as actually read.
    total_size: int


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Member:
    parts: tuple[str, ...]
    is_dir: bool
    #: Opens the entry's bytes (files only); tar members must be read in archive order.
    open: Callable[[], AbstractContextManager[_Readable]] | None

    @property
    def name(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True, slots=True)
class _Layout:
    """The one top-level entry an archive must hold: `<stem>.EOF` (a file) or `<stem>.SAFE/` (a directory)."""

    name: str
    is_dir: bool

    def check(self, member: _Member) -> None:
        expected = f"{self.name}/" if self.is_dir else self.name
        if member.parts[0] != self.name:
            raise UnsafeArchive("unexpected-layout", f"{member.name} is not {expected} (nor inside it)")
        if self.is_dir and len(member.parts) == 1 and not member.is_dir:
            raise UnsafeArchive("unexpected-layout", f"{member.name} is a file, the directory {expected} was expected")
        if not self.is_dir and (member.is_dir or len(member.parts) > 1):
            raise UnsafeArchive("unexpected-layout", f"{member.name}: the archive must hold the single file {expected}")


class _Budget:
    """Uncompressed bytes against the limits, counted twice: as the headers declare them, and as they stream."""

    def __init__(self, limits: ArchiveLimits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = archive_size
        self.declared = 0
        self.real = 0

    def declare(self, size: int) -> None:
        self.declared += size
        self._check(self.declared, "declares")

    def consume(self, size: int) -> None:
        self.real += size
        self._check(self.real, "expands to")

    def entry_ratio(self, name: str, size: int, compressed: int) -> None:
        if size > self.limits.ratio_min_size and size > self.limits.max_entry_ratio * max(compressed, 1):
            raise UnsafeArchive(
                "zip-bomb-ratio",
                f"{name} declares {size} bytes from {compressed} (over {self.limits.max_entry_ratio}:1)",
            )

    def _check(self, total: int, verb: str) -> None:
        limits = self.limits
        if total > limits.max_total_size:
            raise UnsafeArchive("zip-bomb-size", f"archive {verb} over {total} bytes (limit {limits.max_total_size})")
        if total > limits.ratio_min_size and total > limits.max_ratio * max(self.archive_size, 1):
            raise UnsafeArchive(
                "zip-bomb-ratio",
                f"archive {verb} over {total} bytes from {self.archive_size} (over {limits.max_ratio}:1)",
            )


class _Tracker:
    """Entry count, duplicates (also a name that is both a file and a directory) and the expected layout."""

    def __init__(self, limits: ArchiveLimits, layout: _Layout | None) -> None:
        self.max_entries = limits.max_entries
        self.layout = layout
        self.count = 0
        self.files: set[tuple[str, ...]] = set()
        self.dirs: set[tuple[str, ...]] = set()
        self.explicit_dirs: set[tuple[str, ...]] = set()

    def add(self, member: _Member) -> None:
        self.count += 1
        if self.count > self.max_entries:
            raise UnsafeArchive("too-many-entries", f"more than {self.max_entries} entries")
        if self.layout is not None:
            self.layout.check(member)
        parts = member.parts
        if parts in self.files or parts in self.explicit_dirs or (not member.is_dir and parts in self.dirs):
            raise UnsafeArchive("duplicate-entry", f"{member.name} appears more than once")
        for depth in range(1, len(parts)):
            if parts[:depth] in self.files:
                raise UnsafeArchive("duplicate-entry", f"{'/'.join(parts[:depth])} is both a file and a directory")
            self.dirs.add(parts[:depth])
        if member.is_dir:
            self.dirs.add(parts)
            self.explicit_dirs.add(parts)
        else:
            self.files.add(parts)


def _parts(raw: str) -> tuple[str, ...]:
    """An entry name as path components, refusing anything that could resolve outside the destination."""
    name = raw.replace("\\", "/")  # a Windows separator is a separator to every extractor that matters
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchive("absolute-path", f"{raw!r} is absolute")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive("path-traversal", f"{raw!r} has a '..' component")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeArchive("corrupt-archive", f"{raw!r} is not valid UTF-8") from None
    return parts


def _zip_members(path: Path, budget: _Budget, tracker: _Tracker) -> Generator[_Member, None, None]:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > tracker.max_entries:
            raise UnsafeArchive("too-many-entries", f"{len(infos)} entries (limit {tracker.max_entries})")
        members = [member for info in infos if (member := _zip_member(archive, info)) is not None]
        # Everything the central directory tells is checked before a byte is extracted.
        for member in members:
            tracker.add(member)
        files = [info for info in infos if not info.is_dir()]
        budget.declare(sum(info.file_size for info in files))
        for info in files:
            budget.entry_ratio(info.filename, info.file_size, info.compress_size)
        _refuse_overlaps(archive, infos)
        yield from members


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member | None:
    parts = _parts(info.filename)
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise UnsafeArchive("link-escape", f"{info.filename} is a symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchive("special-file", f"{info.filename} is a special file (mode {kind:#o})")
    if info.flag_bits & _ZIP_ENCRYPTED:
        raise UnsafeArchive("corrupt-archive", f"{info.filename} is encrypted")
    if not parts:
        if info.is_dir():
            return None  # "./": the root itself
        raise UnsafeArchive("corrupt-archive", f"{info.filename!r} names no file")
    return _Member(parts, info.is_dir(), None if info.is_dir() else partial(archive.open, info))


def _refuse_overlaps(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Entries sharing compressed bytes are the overlapping-file zip bomb (Python 3.11.7's zipfile lets them pass)."""
    # A lower bound of where each entry ends: its 30-byte local header and its data (name and extra not counted).
    spans = sorted((info.header_offset, info.header_offset + 30 + info.compress_size) for info in infos)
    for (_start, end), (next_start, _next_end) in itertools.pairwise(spans):
        if end > next_start:
            raise UnsafeArchive("zip-bomb-ratio", "entries overlap (overlapping-file zip bomb)")
    if spans and spans[-1][1] > archive.start_dir:
        raise UnsafeArchive("corrupt-archive", "the last entry runs into the central directory")


class _EndMarker:
    """Whether a tar stream ended on a zero block: tarfile silently stops at a truncated or garbled header."""

    clean = False


def _tarinfo_class(marker: _EndMarker) -> type[tarfile.TarInfo]:
    class _TarInfo(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
            try:
                return super().frombuf(buf, encoding, errors)
            except tarfile.HeaderError:
                marker.clean = len(buf) == tarfile.BLOCKSIZE and buf.count(0) == tarfile.BLOCKSIZE
                raise

    return _TarInfo


def _tar_extract(archive: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    reader = archive.extractfile(info)
    if reader is None:  # only for non-files, which never get here
        raise UnsafeArchive("special-file", f"{info.name} has no data")
    return reader


def _tar_members(path: Path, compressed: bool, budget: _Budget, tracker: _Tracker) -> Generator[_Member, None, None]:
    marker = _EndMarker()
    with ExitStack() as stack:
        raw = stack.enter_context(path.open("rb", buffering=CHUNK))
        # gzip itself rather than tarfile's "r|gz", which never checks the gzip CRC and length.
        stream: IO[bytes] | gzip.GzipFile = (
            stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")) if compressed else raw
        )
        archive = stack.enter_context(
            tarfile.open(fileobj=stream, mode="r|", tarinfo=_tarinfo_class(marker), bufsize=CHUNK)
        )
        for info in archive:  # stream mode: one pass, each member read before the next header
            parts = _parts(info.name)
            if info.issym() or info.islnk():
                raise UnsafeArchive("link-escape", f"{info.name} is a link to {info.linkname!r}")
            if not (info.isreg() or info.isdir()):
                raise UnsafeArchive("special-file", f"{info.name} is a device, fifo or other special file")
            if not parts:
                if info.isdir():
                    continue  # "./": the root itself
                raise UnsafeArchive("corrupt-archive", f"{info.name!r} names no file")
            if info.isreg():
                budget.declare(info.size)
            member = _Member(parts, info.isdir(), None if info.isdir() else partial(_tar_extract, archive, info))
            tracker.add(member)
            yield member
        if not marker.clean:
            raise UnsafeArchive("corrupt-archive", "the tar stream ends without an end-of-archive block (truncated)")
        # Read on to the end so that gzip checks its CRC and length; the padding counts against the limits too.
        while chunk := stream.read(CHUNK):
            budget.consume(len(chunk))


def _gz_members(path: Path, name: str, tracker: _Tracker) -> Generator[_Member, None, None]:
    member = _Member((name,), False, partial(gzip.open, path, "rb"))
    tracker.add(member)
    yield member


def _drain(member: _Member, budget: _Budget) -> int:
    return _pump(member, budget, None)


def _pump(member: _Member, budget: _Budget, sink: Callable[[bytes], object] | None) -> int:
    if member.open is None:
        return 0
    size = 0
    with member.open() as source:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            budget.consume(len(chunk))  # before writing: at most one chunk past a limit is ever decompressed
            if sink is not None:
                sink(chunk)
    return size


def _writer(destination: Path) -> Callable[[_Member, _Budget], int]:
    def write(member: _Member, budget: _Budget) -> int:
        target = destination.joinpath(*member.parts)
        if member.is_dir:
            target.mkdir(mode=0o755, parents=True, exist_ok=True)
            return 0
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        # O_EXCL|O_NOFOLLOW: never reuse, follow or overwrite anything already there; 0o644: never executable.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with open(fd, "wb") as out:
            return _pump(member, budget, out.write)

    return write


def _run(
    path: Path,
    container: str,
    limits: ArchiveLimits,
    handle: Callable[[_Member, _Budget], int],
    layout: _Layout | None,
    gz_name: str,
) -> ArchiveReport:
    archive_size = path.stat().st_size
    if archive_size == 0:
        raise UnsafeArchive("empty-archive", f"{path.name} is an empty file")
    budget = _Budget(limits, archive_size)
    tracker = _Tracker(limits, layout)
    members: Generator[_Member, None, None]
    if container == "zip":
        members = _zip_members(path, budget, tracker)
    elif container in ("tar", "tgz"):
        members = _tar_members(path, container == "tgz", budget, tracker)
    elif container == "gz":
        members = _gz_members(path, gz_name, tracker)
    else:
        raise ValueError(f"unknown container {container!r} (expected one of zip, tar, tgz, gz)")
    entries: list[ArchiveEntry] = []
    try:
        for member in members:
            entries.append(ArchiveEntry(member.name, member.is_dir, handle(member, budget)))
    except _CORRUPT as exc:
        raise UnsafeArchive("corrupt-archive", f"{path.name}: {exc}") from exc
    finally:
        members.close()  # now, not when the traceback holding it is freed: it has the archive open
    total = sum(entry.size for entry in entries)
    if total == 0:
        raise UnsafeArchive("empty-archive", f"{path.name} holds no file content")
    return ArchiveReport(tuple(entries), total)


def inspect_archive(path: Path, container: str, limits: ArchiveLimits) -> ArchiveReport:
    """Check every entry of the archive at `path` and decompress it all to nowhere (CRCs checked, real bytes counted).

    `container` is "zip", "tar", "tgz" or "gz" (a gzip holds one file, reported as `path`'s name less ".gz").
    Raises `UnsafeArchive` on the first problem found.
    """
    gz_name = path.name.removesuffix(".gz").removesuffix(".GZ")
    return _run(path, container, limits, _drain, None, gz_name)


def extract_archive(
    path: Path, container: str, destination: Path, limits: ArchiveLimits, *, expected_name: str, expected_dir: bool
) -> Path:
    """Extract the archive into `destination`, checking it as `inspect_archive` does in the same single pass.

    The archive must hold exactly one top-level entry `expected_name`: a file, or a directory when `expected_dir`
    (entries under it only); a gzip's one file is written under that name. Files are created 0o644, directories
    0o755. Returns `destination / expected_name`; on any error nothing of it is left behind. Raises `UnsafeArchive`
    (code "unexpected-layout" for a wrong layout), and `FileExistsError` if `destination / expected_name` exists.
    """
    top = destination / expected_name
    if top.exists() or top.is_symlink():
        raise FileExistsError(f"{top} already exists")
    destination.mkdir(parents=True, exist_ok=True)
    try:
        _run(path, container, limits, _writer(destination), _Layout(expected_name, expected_dir), expected_name)
    except BaseException:
        if top.is_dir() and not top.is_symlink():
            shutil.rmtree(top)
        else:
            top.unlink(missing_ok=True)
        raise
    return top

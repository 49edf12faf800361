"""The S1PDGS transformation: every product becomes one file, `<stem>.EOF.zip` or `<stem>.SAFE.zip`.

Containers (zip, tar, tgz, gz) are unwrapped safely first, then the content is zipped in one streaming pass through
`HashingWriter`, so size, MD5 and SHA256 come out of the same pass that writes the file.

The output is deterministic, so that a retry after a crash publishes the same MD5 and a tar, tgz or gz of a product
publishes the same bytes as the product itself: entries in sorted order (component by component, a directory right
before its content), the fixed timestamp 1980-01-01 00:00:00 (the zip epoch: source mtimes differ between a plain file
and its archived copy, and between two fetches), modes 0644/0755, no extra fields. Same bytes hold for the same zlib
(1.2.13 here): another zlib may compress differently.

Deflate runs on all cores: pigz's scheme (see `_ParallelDeflate`), bytes independent of thread timing.

Entries are written with data descriptors (streaming mode). Readers that stream STORED entries (java.util.zip's
ZipInputStream) refuse those; the default rules use deflate, which every reader streams.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from auxip.ingest.archives import ArchiveLimits, UnsafeArchive, extract_archive
from auxip.ingest.checksums import HashingWriter

CHUNK = 1 << 20
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNIX = 3  # ZipInfo.create_system: external_attr carries a Unix mode
_FILE_ATTR = 0o100644 << 16
_DIR_ATTR = (0o040755 << 16) | 0x10  # 0x10: the MS-DOS directory bit, for readers that only look there
_CATCH_ALL = "*"
_THREADS = os.cpu_count() or 1
_RAW_DEFLATE = -zlib.MAX_WBITS  # no zlib header: zip stores bare deflate
# An empty last block (BFINAL set): what ends a stream of byte-aligned blocks.
_FINAL_BLOCK = zlib.compressobj(6, zlib.DEFLATED, _RAW_DEFLATE).flush()


class TransformRule(BaseModel):
    """How products of some types are packaged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Exact types or fnmatch patterns (case-sensitive): `AUX_POEORB`, `MPL_*`, `AUX_???`, `*` (catch-all).
    product_types: list[str] = Field(min_length=1)
    #: A SAFE directory becomes `<stem>.SAFE.zip` (everything under `<stem>.SAFE/`), an EOF `<stem>.EOF.zip`.
    packaging: Literal["zip"] = "zip"
    compression: Literal["deflate", "stored"] = "deflate"
    #: Deflate level.
    level: int = Field(6, ge=1, le=9)
    #: An input that already is `<stem>.EOF.zip` / `<stem>.SAFE.zip`, with exactly that layout and passing
    #: inspection, is published byte for byte (its MD5 stays the one the source published) instead of re-zipped.
    keep_valid_zip: bool = False

    def matches(self, product_type: str) -> bool:
        return any(fnmatch.fnmatchcase(product_type, pattern) for pattern in self.product_types)


class TransformRules(RootModel[list[TransformRule]]):
    """Ordered rules, the first that matches wins; the last one must be the catch-all (`*`)."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _catch_all_last(self) -> TransformRules:
        catch_alls = [index for index, rule in enumerate(self.root) if _CATCH_ALL in rule.product_types]
        if not catch_alls:
            raise ValueError("no catch-all rule: the last rule must have product_types ['*'], so every type has a rule")
        if catch_alls[0] != len(self.root) - 1:
            raise ValueError(
                f"rule {catch_alls[0]} is a catch-all ('*') but not the last: the rules after it never match"
            )
        return self

    def rule_for(self, product_type: str) -> TransformRule:
        return next(rule for rule in self.root if rule.matches(product_type))


# keep_valid_zip: a product another delivery point already published as a zip keeps its bytes, hence one MD5 for
# the same product wherever it is downloaded.
DEFAULT_RULES = TransformRules.model_validate(
    [
        {  # EOF files: orbits, planning, error matrices, masks
            "product_types": [
                *("AUX_POEORB", "AUX_RESORB", "AUX_PREORB", "AUX_OBMEMC", "AMH_ERRMAT", "AMV_ERRMAT"),
                *("MPL_ORBPRE", "MPL_ORBRES", "MPL_ORBSCT", "MSK_EW_SLC", "MSK__LAND_", "MSK_OCEAN_", "MSK_OVRPAS"),
            ],
            "compression": "deflate",
            "level": 6,
            "keep_valid_zip": True,
        },
        {  # SAFE products
            "product_types": [
                *("AUX_CAL", "AUX_INS", "AUX_PP1", "AUX_PP2", "AUX_SCS", "AUX_SCF", "AUX_ITC"),
                *("AUX_WND", "AUX_WAV", "AUX_ICE", "AUX_TEC", "AUX_TRO"),
            ],
            "compression": "deflate",
            "level": 6,
            "keep_valid_zip": True,
        },
        {"product_types": [_CATCH_ALL], "compression": "deflate", "level": 6, "keep_valid_zip": True},
    ]
)


@dataclass(frozen=True, slots=True)
class Transformed:
    #: The published file, `work_dir / published_name`.
    path: Path
    published_name: str
    size: int
    #: {"MD5": hex, "SHA256": hex} of the published file.
    checksums: dict[str, str]
    #: The EOF file or SAFE directory, for metadata extraction: unpacked into `work_dir` from a container, else the
    #: input itself.
    content: Path
    #: The input zip was published as received (`keep_valid_zip`).
    kept_as_received: bool


def transform(
    input_path: Path,
    stem: str,
    kind: str,
    container: str | None,
    rule: TransformRule,
    work_dir: Path,
    limits: ArchiveLimits,
) -> Transformed:
    """Make the published file of one staged input: a `<stem>.EOF` file or `<stem>.SAFE` directory, or one of them
    in a zip, tar, tgz or gz (`container`).

    Raises `UnsafeArchive` for a refused input (its `code` is the reason), e.g. "unexpected-layout" when a container
    does not hold exactly `<stem>.<kind>`. A crash or an error never leaves a file under the published name.
    """
    if kind not in ("EOF", "SAFE"):
        raise ValueError(f"kind must be EOF or SAFE, not {kind!r}")
    top = f"{stem}.{kind}"
    is_dir = kind == "SAFE"
    published = work_dir / f"{top}.zip"
    work_dir.mkdir(parents=True, exist_ok=True)
    unpacked: Path | None = None
    if container is None:
        _check_plain(input_path, is_dir)
        content = input_path
    else:
        unpacked = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".unpacked", dir=work_dir))
        try:
            content = extract_archive(input_path, container, unpacked, limits, expected_name=top, expected_dir=is_dir)
        except BaseException:
            shutil.rmtree(unpacked, ignore_errors=True)
            raise
    keep = container == "zip" and rule.keep_valid_zip
    produce = partial(_copy_to, input_path) if keep else partial(_write_zip, content, top, is_dir, rule)
    try:
        size, checksums = _write_atomically(published, produce)
    except BaseException:
        if unpacked is not None:
            shutil.rmtree(unpacked, ignore_errors=True)
        raise
    return Transformed(published, published.name, size, checksums, content, keep)


def _check_plain(path: Path, is_dir: bool) -> None:
    """An unwrapped input gets the checks an archive's entries get: no link, no special file, the expected type."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise UnsafeArchive("link-escape", f"{path.name} is a symbolic link")
    if stat.S_ISDIR(mode) if is_dir else stat.S_ISREG(mode):
        return
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise UnsafeArchive("special-file", f"{path.name} is a device, fifo or socket")
    expected = "a directory" if is_dir else "a regular file"
    raise UnsafeArchive("unexpected-layout", f"{path.name} is not {expected}")


def _copy_to(source: Path, out: HashingWriter) -> None:
    _copy_file(source, out.write)


def _write_atomically(final: Path, produce: Callable[[HashingWriter], None]) -> tuple[int, dict[str, str]]:
    fd, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    try:
        with open(fd, "wb", buffering=CHUNK) as raw:
            out = HashingWriter(raw)
            produce(out)
        os.chmod(temporary, 0o644)
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out.size, out.digests()


def _write_zip(content: Path, top: str, is_dir: bool, rule: TransformRule, out: HashingWriter) -> None:
    compression = zipfile.ZIP_DEFLATED if rule.compression == "deflate" else zipfile.ZIP_STORED
    with (
        ThreadPoolExecutor(_THREADS, thread_name_prefix="deflate") as pool,
        zipfile.ZipFile(out, "w", compression=compression, allowZip64=True) as archive,
    ):
        for name, path, size in _entries(content, top, is_dir):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = _UNIX
            if size is None:
                info.external_attr = _DIR_ATTR
                info.CRC = info.compress_size = info.file_size = 0  # mkdir(ZipInfo) leaves them to the caller
                archive.mkdir(info)
                continue
            info.external_attr = _FILE_ATTR
            info.compress_type = compression
            info.file_size = size  # lets zipfile decide on ZIP64 up front, which streaming mode cannot revisit
            # Python 3.11 has no public per-entry level (ZipInfo.compress_level is 3.13); open(info, "w") reads this.
            info._compresslevel = rule.level  # type: ignore[attr-defined]
            with archive.open(info, "w") as entry:
                if compression == zipfile.ZIP_DEFLATED:
                    # zipfile keeps the CRC, sizes and headers; only the deflate work is swapped for the parallel one.
                    entry._compressor = _ParallelDeflate(rule.level, pool)  # type: ignore[attr-defined]
                _copy_file(path, entry.write)


class _ParallelDeflate:
    """One raw deflate stream compressed on several threads (zlib releases the GIL), the way pigz does it.

    The input is cut into 1 MiB blocks; each is compressed on its own, primed with the previous block's last 32 KiB
    as dictionary (so the ratio barely changes) and ended on a byte boundary (Z_SYNC_FLUSH), then the blocks are
    concatenated in order and closed by an empty final block. The bytes depend on the data, the level and zlib only:
    not on the thread count, the timing or how the caller splits its writes.
    """

    def __init__(self, level: int, pool: ThreadPoolExecutor) -> None:
        self._level = level
        self._pool = pool
        self._buffer = bytearray()
        self._history = b""
        self._pending: deque[Future[bytes]] = deque()

    def compress(self, data: bytes | memoryview) -> bytes:
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._submit(bytes(self._buffer[:CHUNK]))
            del self._buffer[:CHUNK]
        # Enough blocks in flight to keep every thread busy, and no more held in memory.
        return self._collect(len(self._pending) - 2 * _THREADS)

    def flush(self) -> bytes:
        if self._buffer:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        return self._collect(len(self._pending)) + _FINAL_BLOCK

    def _submit(self, block: bytes) -> None:
        self._pending.append(self._pool.submit(_deflate_block, block, self._history, self._level))
        self._history = block[-32768:]

    def _collect(self, at_least: int) -> bytes:
        done: list[bytes] = []
        while self._pending and (len(done) < at_least or self._pending[0].done()):
            done.append(self._pending.popleft().result())
        return b"".join(done)


def _deflate_block(block: bytes, history: bytes, level: int) -> bytes:
    if history:
        compressor = zlib.compressobj(level, zlib.DEFLATED, _RAW_DEFLATE, zdict=history)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, _RAW_DEFLATE)
    return compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _entries(content: Path, top: str, is_dir: bool) -> Iterator[tuple[str, Path, int | None]]:
    """(entry name, path, size or None for a directory) in the published order."""
    if not is_dir:
        yield top, content, content.stat().st_size
        return
    yield f"{top}/", content, None
    yield from _tree(content, top)


def _tree(directory: Path, prefix: str) -> Iterator[tuple[str, Path, int | None]]:
    with os.scandir(directory) as scan:
        children = sorted(scan, key=lambda child: child.name)
    for child in children:
        name = f"{prefix}/{child.name}"
        # A link in a fetched tree could pull any file of this host into a published product.
        if child.is_symlink():
            raise UnsafeArchive("link-escape", f"{name} is a symbolic link")
        if child.is_dir(follow_symlinks=False):
            yield f"{name}/", Path(child.path), None
            yield from _tree(Path(child.path), name)
        elif child.is_file(follow_symlinks=False):
            yield name, Path(child.path), child.stat(follow_symlinks=False).st_size
        else:
            raise UnsafeArchive("special-file", f"{name} is a device, fifo or socket")


def _copy_file(source: Path, write: Callable[[memoryview], object]) -> None:
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb", buffering=0) as reader:
        while count := reader.readinto(buffer):
            write(view[:count])

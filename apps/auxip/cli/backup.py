"""Disaster recovery of the catalog database: `auxip backup --to DIR` and `auxip restore --from DIR`.

A backup is a directory of JSON-lines files plus `manifest.json` (row count and SHA256 of every file, written last,
so an interrupted backup has no manifest and cannot be restored):
- `products.jsonl`: every product (evicted ones too) with its checksums and attributes, in PublicationDate order;
- `users.jsonl`, `subscriptions.jsonl`, `notifications.jsonl`: those tables row for row (the notification outbox
  keeps "never twice per subscription and product" across a restore);
- the publication clock and the subscription matcher cursor, in the manifest.
Everything is read in one snapshot (REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so the files
agree with each other while the service keeps publishing.

Restore goes through `auxip.catalog.restore.restore_products`, which keeps each product's Id and PublicationDate
(pollers resume from their cursors) and moves the publication clock past them. It refuses a catalog that already
has products, users or subscriptions unless forced, and checks the row counts afterwards.

Not included: product bytes (object storage has its own backups), ingestion state (sources are re-listed, and
re-publishing an already restored product is a no-op) and download records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from rich.progress import Progress, TaskID
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.types import TypeDecorator

from auxip.auth.models import User
from auxip.catalog.models import Base, Checksum, Product, PublicationClock
from auxip.catalog.records import AttributeValue, ProductRecord
from auxip.catalog.restore import RestoredProduct, restore_products
from auxip.catalog.rows import PRODUCT_COLUMNS
from auxip.subscriptions.models import MatcherCursor, Notification, Subscription

FORMAT: Final = "auxip-catalog-backup"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"
PRODUCTS: Final = "products.jsonl"
#: Tables copied row for row, in restore order (notifications refer to subscriptions and products).
TABLES: Final[dict[str, type[Base]]] = {
    "users.jsonl": User,
    "subscriptions.jsonl": Subscription,
    "notifications.jsonl": Notification,
}
#: A backup holds password hashes and subscription endpoint passwords.
PRIVATE: Final = 0o600
BATCH: Final = 1000


class BackupError(Exception):
    """The backup cannot be written, or the directory is not an intact backup; the message says which file."""


class RestoreRefusedError(Exception):
    """The target catalog is not empty and the restore was not forced."""


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: datetime
    #: File name -> (rows, SHA256 hex).
    files: dict[str, tuple[int, str]]
    publication_clock: datetime
    matcher_cursor: datetime

    def rows(self, name: str) -> int:
        return self.files[name][0]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at.isoformat(),
            "files": {name: {"rows": rows, "sha256": digest} for name, (rows, digest) in self.files.items()},
            "publication_clock": self.publication_clock.isoformat(),
            "matcher_cursor": self.matcher_cursor.isoformat(),
        }


def _quiet() -> Progress:
    return Progress(disable=True)


# --- encoding -------------------------------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decoder(python_type: type) -> Callable[[Any], Any]:
    if python_type is datetime:
        return lambda value: None if value is None else datetime.fromisoformat(value)
    if python_type is uuid.UUID:
        return lambda value: None if value is None else uuid.UUID(value)
    return lambda value: value


def _python_type(model: type[Base], column: str) -> type:
    column_type = model.__table__.c[column].type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance  # UTCDateTime does not forward python_type
    try:
        return column_type.python_type
    except NotImplementedError:
        return object


def _product_line(product: Product) -> dict[str, Any]:
    line = {column: _encode(getattr(product, column)) for column in PRODUCT_COLUMNS}
    line["checksums"] = [
        {"algorithm": c.algorithm, "value": c.value, "checksum_date": _encode(c.checksum_date)}
        for c in product.checksums
    ]
    line["attributes"] = [
        {"name": a.name, "value_type": a.value_type, "value": _encode(a.value)} for a in product.attributes
    ]
    return line


def _attribute_value(value_type: str, value: Any) -> AttributeValue:
    if value_type == "DateTimeOffset":
        return datetime.fromisoformat(value)
    if value_type == "Double":
        return float(value)  # JSON writes 1.0 as 1.0, but a hand-edited 1 must stay a Double
    return value  # type: ignore[no-any-return]


def _restored(line: dict[str, Any]) -> RestoredProduct:
    moment = _decoder(datetime)
    checksums = {c["algorithm"]: c["value"] for c in line["checksums"]}
    md5_date = next((c["checksum_date"] for c in line["checksums"] if c["algorithm"] == "MD5"), None)
    record = ProductRecord(
        name=line["name"],
        content_length=line["content_length"],
        checksums=checksums,
        origin_date=moment(line["origin_date"]),
        content_date_start=moment(line["content_date_start"]),
        content_date_end=moment(line["content_date_end"]),
        eviction_date=moment(line["eviction_date"]),
        attributes={a["name"]: _attribute_value(a["value_type"], a["value"]) for a in line["attributes"]},
        content_type=line["content_type"],
        storage_key=line["storage_key"],
        checksum_date=moment(md5_date),
    )
    return RestoredProduct(record, uuid.UUID(line["id"]), moment(line["publication_date"]))


# --- backup ---------------------------------------------------------------------------------------------------------


class _LinesWriter:
    """JSON lines to a private file, counted and hashed as they are written."""

    def __init__(self, path: Path) -> None:
        self._file: IO[bytes] = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE), "wb")
        self._digest = hashlib.sha256()
        self.rows = 0

    def write(self, document: dict[str, Any]) -> None:
        data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self._digest.update(data)
        self._file.write(data)
        self.rows += 1

    def close(self) -> tuple[int, str]:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self.rows, self._digest.hexdigest()


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only session whose queries all see one state of the database."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(engine) as session:
        if engine.dialect.name == "sqlite":
            # pysqlite opens transactions only before writes; without this every SELECT would see its own state.
            session.connection().exec_driver_sql("BEGIN")
        try:
            yield session
        finally:
            session.rollback()


def write_backup(engine: Engine, directory: Path, progress: Progress | None = None) -> Manifest:
    """Export the catalog into `directory` (absent or empty); returns the manifest written last."""
    progress = progress or _quiet()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not an empty directory: a backup never overwrites files")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files: dict[str, tuple[int, str]] = {}
    with _snapshot(engine) as session:
        total = session.scalar(select(func.count()).select_from(Product)) or 0
        task = progress.add_task("products", total=total)
        writer = _LinesWriter(directory / PRODUCTS)
        query = (
            select(Product)
            .options(selectinload(Product.checksums), selectinload(Product.attributes))
            .order_by(Product.publication_date, Product.id)
            .execution_options(yield_per=BATCH)
        )
        for product in session.scalars(query):
            writer.write(_product_line(product))
            progress.advance(task)
        files[PRODUCTS] = writer.close()
        for name, model in TABLES.items():
            writer = _LinesWriter(directory / name)
            for row in session.execute(select(model.__table__)).mappings():
                writer.write({column: _encode(value) for column, value in row.items()})
            files[name] = writer.close()
        clock = session.scalar(select(PublicationClock.last_publication_date))
        cursor = session.scalar(select(MatcherCursor.last_publication_date))
    if clock is None or cursor is None:
        raise BackupError("the catalog has no publication clock or matcher cursor: it was not migrated")
    manifest = Manifest(datetime.now(UTC), files, clock, cursor)
    with os.fdopen(os.open(directory / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE), "w") as out:
        json.dump(manifest.as_json(), out, indent=2)
        out.write("\n")
    return manifest


# --- restore --------------------------------------------------------------------------------------------------------


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        document = json.loads(path.read_text())
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise BackupError(f"{path}: not a {FORMAT} version {VERSION} manifest")
        files = {name: (int(entry["rows"]), str(entry["sha256"])) for name, entry in document["files"].items()}
        manifest = Manifest(
            datetime.fromisoformat(document["created_at"]),
            files,
            datetime.fromisoformat(document["publication_clock"]),
            datetime.fromisoformat(document["matcher_cursor"]),
        )
    except OSError as exc:
        raise BackupError(f"{path}: cannot read the manifest ({exc.strerror}); was the backup completed?") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{path}: malformed manifest ({exc})") from None
    missing = sorted({PRODUCTS, *TABLES} - set(files))
    if missing:
        raise BackupError(f"{path}: lists no {', '.join(missing)}")
    return manifest


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Every file has the row count and SHA256 the manifest recorded (a damaged backup is refused before any write)."""
    for name, (rows, expected) in manifest.files.items():
        digest = hashlib.sha256()
        lines = 0
        try:
            with (directory / name).open("rb") as data:
                for line in data:
                    digest.update(line)
                    lines += 1
        except OSError as exc:
            raise BackupError(f"{directory / name}: cannot read ({exc.strerror})") from None
        if digest.hexdigest() != expected or lines != rows:
            raise BackupError(
                f"{directory / name}: {lines} rows with SHA256 {digest.hexdigest()}, the manifest has {rows} rows "
                f"with SHA256 {expected}: the backup is damaged"
            )


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as data:
        for line in data:
            yield json.loads(line)


def _counts(engine: Engine) -> dict[str, int]:
    models: dict[str, type[Base]] = {PRODUCTS: Product, **TABLES}
    with engine.connect() as conn:
        return {name: conn.scalar(select(func.count()).select_from(model)) or 0 for name, model in models.items()}


def _insert_missing(engine: Engine, model: type[Base], rows: list[dict[str, Any]]) -> None:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        conn.execute(insert(model).on_conflict_do_nothing(), rows)


def _restore_products(engine: Engine, path: Path, progress: Progress, task: TaskID) -> None:
    # Facts a ProductRecord cannot carry, applied after the insert: eviction, and checksum dates other than MD5's.
    evicted: list[tuple[uuid.UUID, datetime]] = []
    checksum_dates: list[tuple[uuid.UUID, str, datetime]] = []

    def products() -> Iterator[RestoredProduct]:
        for line in _lines(path):
            restored = _restored(line)
            if line["evicted_at"] is not None:
                evicted.append((restored.id, datetime.fromisoformat(line["evicted_at"])))
            for checksum in line["checksums"]:
                moment = datetime.fromisoformat(checksum["checksum_date"])
                if moment != restored.record.checksum_date:
                    checksum_dates.append((restored.id, checksum["algorithm"], moment))
            progress.advance(task)
            yield restored

    restore_products(engine, products(), batch_size=BATCH)
    with Session(engine) as session, session.begin():
        for product_id, evicted_at in evicted:
            session.execute(
                update(Product)
                .where(Product.id == product_id, Product.evicted_at.is_(None))
                .values(evicted_at=evicted_at)
            )
        for product_id, algorithm, moment in checksum_dates:
            session.execute(
                update(Checksum)
                .where(Checksum.product_id == product_id, Checksum.algorithm == algorithm)
                .values(checksum_date=moment)
            )


def _restore_table(engine: Engine, path: Path, model: type[Base]) -> None:
    decoders: dict[str, Callable[[Any], Any]] = {}
    batch: list[dict[str, Any]] = []
    for line in _lines(path):
        row = {}
        for column, value in line.items():
            if column not in decoders:
                decoders[column] = _decoder(_python_type(model, column))
            row[column] = decoders[column](value)
        batch.append(row)
        if len(batch) == BATCH:
            _insert_missing(engine, model, batch)
            batch = []
    if batch:
        _insert_missing(engine, model, batch)


def _advance_clocks(engine: Engine, manifest: Manifest) -> None:
    # Never backwards: a forced restore into a live catalog must not hand out dates (or re-match products) again.
    with Session(engine) as session, session.begin():
        for model, moment in ((PublicationClock, manifest.publication_clock), (MatcherCursor, manifest.matcher_cursor)):
            session.execute(
                update(model)
                .where(model.id == 1, model.last_publication_date < moment)
                .values(last_publication_date=moment)
            )


def restore_backup(
    engine: Engine, directory: Path, *, force: bool = False, progress: Progress | None = None
) -> dict[str, int]:
    """Restore `directory` into the (empty, unless `force`) catalog; returns the row counts found afterwards.

    Raises `BackupError` (damaged backup, or counts that do not add up afterwards), `RestoreRefusedError`, and
    `auxip.catalog.restore.RestoreConflictError` when a forced restore meets a different product under a Name or Id.
    """
    progress = progress or _quiet()
    manifest = read_manifest(directory)
    verify_files(directory, manifest)
    before = _counts(engine)
    if any(before.values()) and not force:
        present = ", ".join(f"{rows} {name.removesuffix('.jsonl')}" for name, rows in before.items() if rows)
        raise RestoreRefusedError(f"the target catalog is not empty ({present}); give --force to merge into it")
    task = progress.add_task("products", total=manifest.rows(PRODUCTS))
    _restore_products(engine, directory / PRODUCTS, progress, task)
    for name, model in TABLES.items():
        _restore_table(engine, directory / name, model)
    _advance_clocks(engine, manifest)
    after = _counts(engine)
    empty = not any(before.values())
    for name, (rows, _digest) in manifest.files.items():
        # Into an empty catalog every row is new; a forced merge may have found some of them already there.
        short = after[name] != rows if empty else after[name] < max(rows, before[name])
        if short:
            raise BackupError(f"restored {after[name]} rows of {name}, the backup has {rows}")
    return after

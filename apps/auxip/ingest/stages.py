"""The pipeline stages: fetch → scan → prepare (validate, transform, metadata) → store → publish → announce.

Each stage takes one claimed item in its input state, does work that is safe to redo, and moves the item on. A
stage signals what went wrong by raising: `Rejection` (quarantine, the pipeline goes on), `Retry` (try again later,
with or without counting an attempt), `StagedInputMissing` (its input vanished: fetch again). Anything else is an
unexpected fault: retried with backoff and quarantined as `stage-failed` after `ingest.max_attempts`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, bindparam, select
from sqlalchemy.orm import Session

from auxip.catalog.models import Checksum, Product
from auxip.catalog.publish import ProductConflictError, publish_product
from auxip.catalog.records import ProductRecord
from auxip.ingest import faults
from auxip.ingest.archives import ArchiveLimits, UnsafeArchive
from auxip.ingest.bus import PRODUCT_PUBLISHED, EventBus
from auxip.ingest.checksums import file_digests
from auxip.ingest.metadata import MetadataError, extract_metadata
from auxip.ingest.models import IngestItem, SourceState
from auxip.ingest.naming import InvalidName, parse_name
from auxip.ingest.quarantine import Rejection
from auxip.ingest.scanner import ClamdScanner, ScanError, ScannerUnavailable
from auxip.ingest.settings import IngestSettings, RetentionSettings
from auxip.ingest.sources.base import (
    PermanentSourceError,
    RemoteFile,
    RemoteFileGone,
    Source,
    SourceError,
    TransientSourceError,
)
from auxip.ingest.state import Item, advance, utcnow
from auxip.ingest.transform import TransformRules, transform
from auxip.storage import Storage
from auxip.subscriptions.retry import RetryPolicy

log = logging.getLogger("auxip.ingest")


class Retry(Exception):
    def __init__(self, detail: str, delay: float | None = None, count_attempt: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.delay = delay
        self.count_attempt = count_attempt


class StagedInputMissing(Exception):
    """The staged bytes of a fetched item are gone (crash while quarantining, an operator cleaning up): refetch."""


class DuplicateProduct(Exception):
    """The same product (same published name and MD5) is already published or on its way from elsewhere."""


@dataclass
class Pipeline:
    """What the stages run on: built once by `auxip.ingest.service`."""

    engine: Engine
    storage: Storage
    scanner: ClamdScanner | None
    sources: Mapping[str, Source]
    source_types: Mapping[str, list[str]]
    #: Lower is preferred: a product several sources offer is fetched from the best one that is healthy.
    source_priority: Mapping[str, int]
    #: Sources that trigger routes: their files are delivered, not published (after the same antivirus stage).
    routed_sources: frozenset[str]
    bus: EventBus
    settings: IngestSettings
    retention: RetentionSettings
    rules: TransformRules
    staging_dir: Path
    quarantine_dir: Path
    #: This process's staging area (host and directory): fetched items stay with it until they are stored.
    node: str
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    #: A stage that succeeded keeps its claim this long so its worker runs the next stage too (None: hand over).
    hold: timedelta | None = None

    def item_dir(self, item: Item) -> Path:
        return self.staging_dir / str(item.id)

    def staged(self, item: Item) -> Path:
        return self.item_dir(item) / "input" / item.name

    def work_dir(self, item: Item) -> Path:
        return self.item_dir(item) / "work"


#: A stage returns the item as it left it when it kept the claim for the next stage (`Pipeline.hold`), else None.
Stage = Callable[[Pipeline, Item, str], Awaitable[Item | None]]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _fresh_dir(item_dir: Path, directory: Path) -> None:
    _remove(item_dir)  # leftovers of an attempt that died
    directory.mkdir(parents=True)


def _remote(item: Item) -> RemoteFile:
    checksum = None
    if item.advertised_checksum:
        algorithm, _, value = item.advertised_checksum.partition(":")
        checksum = (algorithm, value)
    return RemoteFile(item.path, item.name, item.size, None, item.version, checksum, item.is_dir, item.origin_date)


#: Built once, as the other per-item statements (`auxip.ingest.state`): building them costs more than running them.
_ONLINE_MD5 = (
    select(Product.evicted_at, Checksum.value)
    .outerjoin(Checksum, and_(Checksum.product_id == Product.id, Checksum.algorithm == "MD5"))
    .where(Product.name == bindparam("c_name"))
)
_OTHER_COPIES = (
    select(IngestItem.source, IngestItem.state, SourceState.open_until)
    .outerjoin(SourceState, SourceState.source == IngestItem.source)
    .where(
        IngestItem.product_name == bindparam("c_name"),
        IngestItem.id != bindparam("c_id"),
        IngestItem.state.not_in(("quarantined", "duplicate")),
    )
)


def _online_md5(engine: Engine, name: str) -> str | bool | None:
    """MD5 of the online product of that name; False when there is none."""
    with engine.connect() as conn:
        row = conn.execute(_ONLINE_MD5, {"c_name": name}).one_or_none()
    if row is None or row.evicted_at is not None:
        return False
    md5: str | None = row.value
    return md5


# --- fetch -------------------------------------------------------------------------------------------------------


def _check_space(pipeline: Pipeline, item: Item) -> None:
    try:
        free = shutil.disk_usage(pipeline.staging_dir).free
    except FileNotFoundError:  # first use, or an operator removed it: not worth a mkdir per item otherwise
        pipeline.staging_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(pipeline.staging_dir).free
    needed = (item.size or 0) + pipeline.settings.min_free_bytes
    if free < needed:
        wait = min(30.0, pipeline.settings.retry_max_seconds)
        raise Retry(f"staging has {free} bytes free, {needed} needed: waiting for space", wait, count_attempt=False)


def _preferred_copy(pipeline: Pipeline, item: Item) -> str | None:
    """Why to wait for another source's copy of this product, or None to fetch it from here now.

    Failover: a source with a better (lower) priority that lists the same product and is healthy gets it; this copy
    waits while that one is on its way, and goes ahead once it was quarantined or its source's circuit opened.
    """
    mine = pipeline.source_priority.get(item.source, 100)
    with pipeline.engine.connect() as conn:
        rows = conn.execute(_OTHER_COPIES, {"c_name": item.product_name, "c_id": item.id}).all()
    now = utcnow()
    for source, state, open_until in rows:
        if pipeline.source_priority.get(source, 100) >= mine:
            continue
        if state == "discovered" and open_until is not None and open_until > now:
            continue  # the better source is failing: fail over to this one
        return f"{source} (priority {pipeline.source_priority.get(source, 100)}) has it {state}"
    return None


async def fetch(pipeline: Pipeline, item: Item, worker: str) -> Item | None:
    if item.product_name and item.source not in pipeline.routed_sources:
        if _online_md5(pipeline.engine, item.product_name) is not False:
            raise DuplicateProduct(f"{item.product_name} is already published")
        preferred = _preferred_copy(pipeline, item)
        if preferred is not None:
            raise Retry(f"waiting for the preferred source: {preferred}", 2, count_attempt=False)
    _check_space(pipeline, item)
    target = pipeline.staged(item)
    await asyncio.to_thread(_fresh_dir, pipeline.item_dir(item), target.parent)
    source = pipeline.sources[item.source]
    try:
        written = await source.fetch(_remote(item), target)
    except OSError as exc:
        _remove(pipeline.item_dir(item))
        if exc.errno == errno.ENOSPC:
            raise Retry(f"staging is full: {exc}", min(30.0, pipeline.settings.retry_max_seconds), False) from None
        raise
    except RemoteFileGone as exc:
        _remove(pipeline.item_dir(item))
        if item.attempts + 1 >= pipeline.settings.max_attempts:
            raise Rejection("source-gone", f"{exc} (after {item.attempts + 1} attempts)") from None
        raise Retry(str(exc)) from None
    except TransientSourceError as exc:
        _remove(pipeline.item_dir(item))
        raise Retry(str(exc), exc.retry_after) from None
    except (PermanentSourceError, SourceError) as exc:
        _remove(pipeline.item_dir(item))
        raise Retry(f"source refused: {exc}", pipeline.settings.retry_max_seconds) from None
    faults.point("fetch.after")
    if item.size is not None and written != item.size:
        raise Rejection("size-mismatch", f"the source listed {item.size} bytes, the transfer gave {written}")
    if written == 0:
        raise Rejection("empty", "the file is empty")
    if item.advertised_checksum:
        algorithm, _, expected = item.advertised_checksum.partition(":")
        if not target.is_dir():
            actual = (await asyncio.to_thread(file_digests, target, (algorithm,)))[algorithm]
            if actual.lower() != expected.lower():
                raise Rejection("checksum-mismatch", f"the source advertised {algorithm} {expected}, got {actual}")
    # Handed over, not kept: fetching is bounded per source, the other stages by `ingest.workers`.
    return advance(pipeline.engine, item, worker, "fetched", {"fetched_bytes": written}, staged_on=pipeline.node)


# --- scan --------------------------------------------------------------------------------------------------------


def _require_staged(pipeline: Pipeline, item: Item) -> Path:
    path = pipeline.staged(item)
    if not (path.exists() or path.is_symlink()):
        raise StagedInputMissing(f"{path} is missing")
    return path


async def scan(pipeline: Pipeline, item: Item, worker: str) -> Item | None:
    path = _require_staged(pipeline, item)
    after = "routing" if item.source in pipeline.routed_sources else "scanned"
    if pipeline.scanner is None:
        unscanned = {"scan": {"verdict": "not scanned: scanner disabled"}}
        return advance(pipeline.engine, item, worker, after, unscanned, hold_for=pipeline.hold)
    try:
        verdict = await pipeline.scanner.scan_path(path)
    except ScannerUnavailable as exc:
        # Files wait for the scanner; its outage is nobody's attempt.
        raise Retry(f"scanner unavailable: {exc}", 5, count_attempt=False) from None
    except ScanError as exc:
        if item.attempts + 1 >= pipeline.settings.max_attempts:
            raise Rejection("scan-error", str(exc)) from None
        raise Retry(f"scanner error: {exc}") from None
    version = f"ClamAV {verdict.engine_version}/{verdict.signature_version or 'private database'}"
    if not verdict.clean:
        member = f" in {verdict.infected_member}" if verdict.infected_member else ""
        raise Rejection("infected", f"{verdict.signature}{member}", verdict.signature, version)
    faults.point("scan.after")
    clean = {"scan": {"verdict": "clean", "scanner": version}}
    return advance(pipeline.engine, item, worker, after, clean, hold_for=pipeline.hold)


# --- prepare: validate the name, transform for S1PDGS, extract metadata ------------------------------------------


def _metadata_json(start: datetime, end: datetime | None, attributes: Mapping[str, Any]) -> dict[str, Any]:
    def encode(value: Any) -> Any:
        return {"$datetime": value.isoformat()} if isinstance(value, datetime) else value

    return {
        "content_date_start": start.isoformat(),
        "content_date_end": end.isoformat() if end else None,
        "attributes": {name: encode(value) for name, value in attributes.items()},
    }


async def prepare(pipeline: Pipeline, item: Item, worker: str) -> Item | None:
    path = _require_staged(pipeline, item)
    try:
        parsed = parse_name(item.name)
    except InvalidName as exc:
        raise Rejection("bad-name", f"{exc.code}: {exc.detail}") from None
    allowed = pipeline.source_types.get(item.source) or []
    if allowed and parsed.product_type not in allowed:
        raise Rejection("unexpected-type", f"{parsed.product_type} is not among this source's {allowed}")
    if not parsed.known_type and pipeline.settings.unknown_types == "quarantine":
        raise Rejection("unknown-type", f"{parsed.product_type} is not a known Sentinel-1 auxiliary type")
    work = pipeline.work_dir(item)
    await asyncio.to_thread(_fresh_dir, work, work)
    rule = pipeline.rules.rule_for(parsed.product_type)
    try:
        result = await asyncio.to_thread(
            transform, path, parsed.stem, parsed.kind, parsed.container, rule, work, pipeline.archive_limits
        )
        metadata = await asyncio.to_thread(extract_metadata, parsed, result.content)
    except UnsafeArchive as exc:
        raise Rejection(exc.code, exc.detail) from None
    except MetadataError as exc:
        raise Rejection(exc.code, exc.detail) from None
    details = {
        "published_file": str(result.path.relative_to(pipeline.item_dir(item))),
        "size": result.size,
        "checksums": dict(result.checksums),
        "metadata": _metadata_json(metadata.content_date_start, metadata.content_date_end, metadata.attributes),
    }
    prepared = advance(
        pipeline.engine,
        item,
        worker,
        "prepared",
        details,
        hold_for=pipeline.hold,
        product_name=result.published_name,
        product_type=parsed.product_type,
    )
    # The input is no longer needed once the prepared file is recorded; only the published file moves on.
    await asyncio.to_thread(_remove, path)
    return prepared


# --- store -------------------------------------------------------------------------------------------------------


def storage_key(product_type: str, md5: str, product_name: str) -> str:
    """The MD5 in the key keeps two different files of one name (a conflict) from ever overwriting each other."""
    return f"{product_type}/{md5}/{product_name}"


async def store(pipeline: Pipeline, item: Item, worker: str) -> Item | None:
    assert item.product_name is not None
    assert item.product_type is not None
    md5 = item.details["checksums"]["MD5"]
    online = _online_md5(pipeline.engine, item.product_name)
    if online is not False:
        if online == md5:
            raise DuplicateProduct(f"{item.product_name} is already published with the same MD5")
        # Never overwrite bytes that clients may have downloaded and verified.
        raise Rejection("conflict", f"{item.product_name} is already published with MD5 {online}, this one is {md5}")
    key = storage_key(item.product_type, md5, item.product_name)
    published = pipeline.item_dir(item) / item.details["published_file"]
    if not published.exists():
        # A previous attempt moved it into local storage and died before recording it: check what is there.
        if not await pipeline.storage.exists(key):
            raise StagedInputMissing(f"{published} is missing and nothing is stored under {key}")
        if await _stored_md5(pipeline.storage, key) != md5:
            raise StagedInputMissing(f"{published} is missing and {key} does not hold it")
    else:
        local = pipeline.storage.local_path(key)
        if local is not None and same_filesystem(published, local):
            # Same filesystem: a rename is atomic and copies nothing; the MD5 was computed while writing the file.
            await asyncio.to_thread(_move_into_place, published, local)
        else:
            info = await pipeline.storage.put_file(key, published)
            if info.md5 is not None and info.md5 != md5:
                raise Retry(f"storage wrote MD5 {info.md5} for {key}, expected {md5}")
    faults.point("store.after")
    return advance(pipeline.engine, item, worker, "stored", {"storage_key": key}, hold_for=pipeline.hold)


async def _stored_md5(storage: Storage, key: str) -> str | None:
    """The MD5 of what `key` holds: hashed when it is a local file, else what the store says (an S3 ETag is the MD5
    unless the upload was multipart: then None, and the item is fetched again rather than trusted)."""
    stored = storage.local_path(key)
    if stored is not None:
        return (await asyncio.to_thread(file_digests, stored, ("MD5",)))["MD5"]
    return (await storage.stat(key)).md5


def _move_into_place(published: Path, stored: Path) -> None:
    stored.parent.mkdir(parents=True, exist_ok=True)
    os.replace(published, stored)


def link_into_place(staged: Path, stored: Path) -> None:
    """`stored` becomes another name of `staged` (replacing what a dead attempt left there): nothing is copied."""
    stored.parent.mkdir(parents=True, exist_ok=True)
    temporary = stored.with_name(f".tmp-link-{os.getpid()}-{stored.name}")
    temporary.unlink(missing_ok=True)
    os.link(staged, temporary)
    os.replace(temporary, stored)


def same_filesystem(a: Path, b: Path) -> bool:
    anchor = b
    while not anchor.exists():
        anchor = anchor.parent
    return a.stat().st_dev == anchor.stat().st_dev


# --- publish: the catalog commit is the publication ----------------------------------------------------------------


def _record(pipeline: Pipeline, item: Item) -> ProductRecord:
    assert item.product_name is not None
    assert item.product_type is not None
    metadata = item.details["metadata"]

    def decode(value: Any) -> Any:
        return datetime.fromisoformat(value["$datetime"]) if isinstance(value, dict) else value

    end = metadata["content_date_end"]
    return ProductRecord(
        name=item.product_name,
        content_length=item.details["size"],
        checksums=item.details["checksums"],
        origin_date=item.origin_date,
        content_date_start=datetime.fromisoformat(metadata["content_date_start"]),
        content_date_end=datetime.fromisoformat(end) if end else None,
        storage_key=item.details["storage_key"],
        retention=pipeline.retention.for_type(item.product_type),
        attributes={name: decode(value) for name, value in metadata["attributes"].items()},
    )


async def publish(pipeline: Pipeline, item: Item, worker: str) -> Item | None:
    record = _record(pipeline, item)
    held: Item | None = None
    try:
        with Session(pipeline.engine) as session, session.begin():
            published = publish_product(session, record)
            if not published.created:
                # Another item (another source's copy) published these very bytes first; the state commit of this
                # item's own publication is atomic with it, so a redo of this stage can never get here.
                raise DuplicateProduct(f"{record.name} was published by another copy")
            # The PublicationDate travels in the item, so announcing (at once, or after a crash) reads nothing back.
            held = advance(
                session.connection(),
                item,
                worker,
                "published",
                {"publication_date": published.publication_date.isoformat()},
                hold_for=pipeline.hold,
                product_id=published.id,
            )
    except ProductConflictError as exc:
        await pipeline.storage.delete(record.storage_key)  # ours alone: the key carries our MD5
        raise Rejection("conflict", str(exc)) from None
    faults.point("publish.after")
    # The staging directory goes once the item is announced (which also covers a crash in between).
    return held


# --- announce: product.published on the bus ----------------------------------------------------------------------


def published_event(item: Item, publication_date: datetime | None) -> dict[str, Any]:
    return {
        "ProductId": str(item.product_id),
        "ProductName": item.product_name,
        "productType": item.product_type,
        "ContentLength": item.details.get("size"),
        "MD5": item.details.get("checksums", {}).get("MD5"),
        "PublicationDate": publication_date.isoformat() if publication_date else None,
        "source": item.source,
    }


async def announce(pipeline: Pipeline, item: Item, worker: str) -> Item | None:
    recorded = item.details.get("publication_date")
    if recorded is not None:
        publication_date = datetime.fromisoformat(recorded)
    else:  # published by a version that did not record it in the item
        with pipeline.engine.connect() as conn:
            publication_date = conn.execute(
                select(Product.publication_date).where(Product.id == item.product_id)
            ).scalar_one()
    event = published_event(item, publication_date)
    key = item.product_name or str(item.product_id)
    if pipeline.bus.joins_transactions:
        # One transaction: the event exists exactly when the item is announced.
        with pipeline.engine.begin() as conn:
            advance(conn, item, worker, "announced")
            await pipeline.bus.publish(PRODUCT_PUBLISHED, key, event, connection=conn)
    else:
        await pipeline.bus.publish(PRODUCT_PUBLISHED, key, event)
        advance(pipeline.engine, item, worker, "announced")
    await asyncio.to_thread(_remove, pipeline.item_dir(item))
    return None


#: input state -> (stage name, stage), in pipeline order.
STAGES: dict[str, tuple[str, Stage]] = {
    "discovered": ("fetch", fetch),
    "fetched": ("scan", scan),
    "scanned": ("prepare", prepare),
    "prepared": ("store", store),
    "stored": ("publish", publish),
    "published": ("announce", announce),
}


def retry_delay(settings: IngestSettings, attempts: int) -> timedelta:
    """Exponential backoff with jitter for the `attempts`-th failure (the subscriptions' policy, our bounds)."""
    policy = RetryPolicy(
        base_delay=timedelta(seconds=settings.retry_base_seconds),
        max_delay=timedelta(seconds=settings.retry_max_seconds),
        max_attempts=settings.max_attempts,
    )
    return policy.delay(attempts)

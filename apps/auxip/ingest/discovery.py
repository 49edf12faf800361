"""Discovery: poll each source, record entries not seen before, keep the source's circuit breaker and cursor.

An entry is recorded once per (source, path, version) — the unique key of `ingest_item` — so a file is fetched once
however often it is listed, and again only when its content changes (new ETag, size or mtime). A source that keeps
failing opens its circuit: it is left alone for `circuit_open_seconds`, doubling up to an hour, then tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from auxip.claims import insert_ignoring_duplicates
from auxip.ingest.models import IngestItem, SourceState
from auxip.ingest.naming import InvalidName, parse_name
from auxip.ingest.settings import IngestSettings
from auxip.ingest.sources.base import RemoteFile, Source, SourceError, TransientSourceError
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.state import utcnow

log = logging.getLogger("auxip.ingest.discovery")


def _product(name: str) -> tuple[str | None, str | None]:
    try:
        parsed = parse_name(name)
    except InvalidName:
        return None, None  # recorded all the same: the prepare stage quarantines it with the reason
    return parsed.published_name, parsed.product_type


class Discovery:
    """The discovery state of one source inside one process (what it has already recorded)."""

    def __init__(self, engine: Engine, source: Source, settings: SourceSettings, ingest: IngestSettings) -> None:
        self.engine = engine
        self.source = source
        self.settings = settings
        self.ingest = ingest
        self._known: set[tuple[str, str]] = set()
        self._loaded = False

    def _load(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(IngestItem.path, IngestItem.version).where(IngestItem.source == self.settings.name)
            )
            self._known = {(path, version) for path, version in rows}
            state = conn.execute(select(SourceState).where(SourceState.source == self.settings.name)).first()
        if state is None:
            with self.engine.begin() as conn:
                conn.execute(
                    insert_ignoring_duplicates(self.engine.dialect.name, SourceState),
                    [{"source": self.settings.name, "consecutive_failures": 0}],
                )
        self._loaded = True

    def _wanted(self, entry: RemoteFile) -> bool:
        if not self.settings.accepts(entry.name):
            return False
        stamp = entry.origin_date or entry.modified
        return not (self.settings.ignore_before and stamp and stamp < self.settings.ignore_before)

    def record(self, entries: Iterable[RemoteFile]) -> int:
        """Record the entries not seen before; returns how many were new."""
        now = utcnow()
        rows = []
        for entry in entries:
            if (entry.path, entry.version) in self._known or not self._wanted(entry):
                continue
            product_name, product_type = _product(entry.name)
            if self.settings.product_types and product_type and product_type not in self.settings.product_types:
                continue
            rows.append(
                {
                    "source": self.settings.name,
                    "path": entry.path,
                    "name": entry.name,
                    "version": entry.version,
                    "size": entry.size,
                    "is_dir": entry.is_dir,
                    "advertised_checksum": f"{entry.checksum[0]}:{entry.checksum[1]}" if entry.checksum else None,
                    "origin_date": entry.origin_date or now,
                    "discovered_at": now,
                    "updated_at": now,
                    "state": "discovered",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "product_name": product_name,
                    "product_type": product_type,
                    "details": "{}",
                }
            )
        if rows:
            with self.engine.begin() as conn:
                for start in range(0, len(rows), 500):
                    conn.execute(
                        insert_ignoring_duplicates(self.engine.dialect.name, IngestItem), rows[start : start + 500]
                    )
            self._known.update((str(row["path"]), str(row["version"])) for row in rows)
        return len(rows)

    def circuit_open_until(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(SourceState.open_until).where(SourceState.source == self.settings.name)
            ).scalar_one_or_none()

    def _cursor(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(SourceState.cursor).where(SourceState.source == self.settings.name)
            ).scalar_one_or_none()

    async def poll(self) -> tuple[int, float | None]:
        """One listing: (new entries, seconds the server asked us to wait before the next poll or None)."""
        if not self._loaded:
            self._load()
        now = utcnow()
        open_until = self.circuit_open_until()
        if open_until is not None and open_until > now:
            return 0, (open_until - now).total_seconds()
        if hasattr(self.source, "cursor"):
            self.source.cursor = self._cursor()
        try:
            entries = [entry async for entry in self.source.list()]
        except SourceError as exc:
            return 0, self._failed(exc)
        new = self.record(entries)
        values: dict[str, Any] = {
            "consecutive_failures": 0,
            "open_until": None,
            "last_poll_at": now,
            "last_success_at": now,
            "last_error": None,
        }
        last_seen = getattr(self.source, "last_seen", None)
        if last_seen is not None:
            values["cursor"] = last_seen
        with self.engine.begin() as conn:
            conn.execute(update(SourceState).where(SourceState.source == self.settings.name).values(**values))
        if new:
            log.info("discovered", extra={"source": self.settings.name, "new": new, "listed": len(entries)})
        return new, None

    def _failed(self, exc: SourceError) -> float | None:
        with self.engine.begin() as conn:
            failures = (
                conn.execute(
                    select(SourceState.consecutive_failures).where(SourceState.source == self.settings.name)
                ).scalar_one()
                + 1
            )
            values: dict[str, Any] = {
                "consecutive_failures": failures,
                "last_poll_at": utcnow(),
                "last_error": str(exc),
            }
            wait = exc.retry_after if isinstance(exc, TransientSourceError) else None
            if failures >= self.ingest.circuit_threshold:
                opened = min(self.ingest.circuit_open_seconds * 2 ** (failures - self.ingest.circuit_threshold), 3600)
                values["open_until"] = utcnow() + timedelta(seconds=opened)
                wait = max(wait or 0, opened)
                log.warning("circuit open", extra={"source": self.settings.name, "seconds": opened, "error": str(exc)})
            conn.execute(update(SourceState).where(SourceState.source == self.settings.name).values(**values))
        return wait

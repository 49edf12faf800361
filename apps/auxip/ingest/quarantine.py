"""Quarantine: refused files are kept with a machine-readable reason, listed, released or purged — all audited.

A refusal first moves the refused bytes under `<data_dir>/quarantine/<item id>/`, then records the entry and moves the
item to `quarantined` in one transaction. A crash between the two leaves the item in its stage with its staged file
gone; the stage then fetches it again (see `auxip.ingest.stages.StagedInputMissing`), so nothing is lost.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from auxip.ingest.models import AuditRecord, IngestItem, QuarantineEntry
from auxip.ingest.state import Item, advance, utcnow

#: The stage that refused an item -> the state it re-enters on release (that stage then runs again).
STAGE_INPUT = {"fetch": "discovered", "scan": "fetched", "prepare": "scanned", "store": "prepared", "route": "routing"}


class Rejection(Exception):
    """The item must not go further: quarantine it with `reason` (machine-readable) and `detail` (for people)."""

    def __init__(
        self, reason: str, detail: str, signature: str | None = None, scanner_version: str | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.signature = signature
        self.scanner_version = scanner_version


@dataclass(frozen=True, slots=True)
class QuarantineView:
    id: int
    item_id: int
    source: str
    name: str
    reason: str
    detail: str
    stage: str
    signature: str | None
    scanner_version: str | None
    size: int | None
    path: str | None
    created_at: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in self.__dataclass_fields__}


def audit(conn: Connection, actor: str, action: str, subject: str, detail: Mapping[str, Any]) -> None:
    conn.execute(
        insert(AuditRecord),
        [
            {
                "at": utcnow(),
                "actor": actor,
                "action": action,
                "subject": subject,
                "detail": json.dumps(detail, default=str),
            }
        ],
    )


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.stat().st_size


def quarantine(
    engine: Engine, quarantine_dir: Path, item: Item, worker: str, stage: str, rejection: Rejection, staged: Path | None
) -> int:
    """Keep `staged` (if any) and record the refusal; returns the quarantine entry id."""
    kept: str | None = None
    size: int | None = None
    if staged is not None and (staged.exists() or staged.is_symlink()):
        target_dir = quarantine_dir / str(item.id)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / staged.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(staged, target)
        kept = str(target.relative_to(quarantine_dir))
        size = _size(target)
    with engine.begin() as conn:
        advance(conn, item, worker, "quarantined", {"quarantine": {"reason": rejection.reason, "stage": stage}})
        row = {
            "item_id": item.id,
            "reason": rejection.reason,
            "detail": rejection.detail[:4000],
            "stage": stage,
            "signature": rejection.signature,
            "scanner_version": rejection.scanner_version,
            "size": size,
            "path": kept,
            "created_at": utcnow(),
            "status": "held",
        }
        entry_id = conn.execute(insert(QuarantineEntry).returning(QuarantineEntry.id), [row]).scalar_one()
        audit(conn, "pipeline", "quarantine.add", f"{item.source}:{item.path}", {"entry": entry_id, **row})
    return int(entry_id)


def list_entries(engine: Engine, status: str | None = "held") -> list[QuarantineView]:
    query = (
        select(
            QuarantineEntry.id,
            QuarantineEntry.item_id,
            IngestItem.source,
            IngestItem.name,
            QuarantineEntry.reason,
            QuarantineEntry.detail,
            QuarantineEntry.stage,
            QuarantineEntry.signature,
            QuarantineEntry.scanner_version,
            QuarantineEntry.size,
            QuarantineEntry.path,
            QuarantineEntry.created_at,
            QuarantineEntry.status,
        )
        .join(IngestItem, IngestItem.id == QuarantineEntry.item_id)
        .order_by(QuarantineEntry.id)
    )
    if status is not None:
        query = query.where(QuarantineEntry.status == status)
    with engine.connect() as conn:
        return [
            QuarantineView(**{**row._mapping, "created_at": row.created_at.isoformat().replace("+00:00", "Z")})
            for row in conn.execute(query)
        ]


class QuarantineActionError(LookupError):
    """No held entry with that id."""


def _held(conn: Connection, entry_id: int) -> Any:
    row = conn.execute(
        select(QuarantineEntry.item_id, QuarantineEntry.stage, QuarantineEntry.path)
        .where(QuarantineEntry.id == entry_id, QuarantineEntry.status == "held")
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise QuarantineActionError(f"no held quarantine entry {entry_id}")
    return row


def release(engine: Engine, quarantine_dir: Path, staging_dir: Path, entry_id: int, actor: str) -> None:
    """Put the item back where it was refused, with its bytes; the refusing stage runs again."""
    with engine.begin() as conn:
        item_id, stage, kept = _held(conn, entry_id)
        if kept is not None:
            source = quarantine_dir / kept
            target = staging_dir / str(item_id) / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
        now = utcnow()
        conn.execute(
            update(QuarantineEntry)
            .where(QuarantineEntry.id == entry_id)
            .values(status="released", resolved_at=now, resolved_by=actor)
        )
        conn.execute(
            update(IngestItem)
            .where(IngestItem.id == item_id, IngestItem.state == "quarantined")
            .values(state=STAGE_INPUT[stage], attempts=0, claimed_by=None, next_attempt_at=now, updated_at=now)
        )
        audit(conn, actor, "quarantine.release", str(entry_id), {"item": item_id, "stage": stage})


def purge(engine: Engine, quarantine_dir: Path, entry_id: int, actor: str) -> None:
    """Delete the refused bytes for good; the entry and its audit trail stay."""
    with engine.begin() as conn:
        item_id, _stage, kept = _held(conn, entry_id)
        if kept is not None:
            path = quarantine_dir / kept
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        conn.execute(
            update(QuarantineEntry)
            .where(QuarantineEntry.id == entry_id)
            .values(status="purged", resolved_at=utcnow(), resolved_by=actor)
        )
        audit(conn, actor, "quarantine.purge", str(entry_id), {"item": item_id, "path": kept})

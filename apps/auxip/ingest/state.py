"""Claims and transitions of ingestion items: the only code that writes `ingest_item.state`.

A claim (`auxip.claims`) sets `claimed_by` and pushes `next_attempt_at` to the end of a lease; a transition
succeeds only for the claimant (`WHERE id = ? AND state = ? AND claimed_by = ?`). So two workers — two processes, or
a restarted one racing a stale lease — can never both move an item on, and a worker killed mid-stage only delays the
item by the rest of its lease.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Update, and_, bindparam, exists, literal, or_, update

from auxip.catalog.leases import SingletonLease
from auxip.claims import claim_statement
from auxip.ingest.models import IngestItem


def utcnow() -> datetime:
    return datetime.now(UTC)


def worker_id(role: str) -> str:
    """Unique per process and role, readable in `auxip status`: host:pid:role:random."""
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{role}:{uuid.uuid4().hex[:6]}"


#: Lease names (`auxip.catalog.leases`) of the staging areas whose processes are alive: `staging:<node>`.
STAGING_LEASE_PREFIX = "staging:"


def staging_node(staging_dir: Path) -> str:
    """The staging area of this host and directory, short enough to name its lease: host:<hash of the directory>."""
    digest = hashlib.sha256(str(staging_dir.resolve()).encode()).hexdigest()[:12]
    return f"{socket.gethostname()[:24]}:{digest}"


def staging_lease(node: str) -> str:
    return STAGING_LEASE_PREFIX + node


class ClaimLost(Exception):
    """The item's lease expired and another worker took it: stop working on it, do not write."""


@dataclass(frozen=True, slots=True)
class Item:
    """A claimed item as a stage sees it."""

    id: int
    source: str
    path: str
    name: str
    version: str
    size: int | None
    is_dir: bool
    advertised_checksum: str | None
    origin_date: datetime
    state: str
    attempts: int
    product_name: str | None
    product_type: str | None
    product_id: uuid.UUID | None
    details: Mapping[str, Any]


_ITEM_FIELDS = frozenset(field.name for field in dataclasses.fields(Item))

_COLUMNS = (
    IngestItem.id,
    IngestItem.source,
    IngestItem.path,
    IngestItem.name,
    IngestItem.version,
    IngestItem.size,
    IngestItem.is_dir,
    IngestItem.advertised_checksum,
    IngestItem.origin_date,
    IngestItem.state,
    IngestItem.attempts,
    IngestItem.product_name,
    IngestItem.product_type,
    IngestItem.product_id,
    IngestItem.details,
)


def _item(row: Sequence[Any]) -> Item:
    values = list(row)
    values[-1] = json.loads(values[-1] or "{}")
    return Item(*values)


@functools.cache
def _claim_statement(dialect: str, sources: tuple[str, ...] | None, staged: bool) -> Update:
    due = and_(IngestItem.state == bindparam("c_state"), IngestItem.next_attempt_at <= bindparam("c_now"))
    if sources is not None:
        due = and_(due, IngestItem.source.in_(sources))
    if staged:
        node_alive = exists().where(
            SingletonLease.name == literal(STAGING_LEASE_PREFIX) + IngestItem.staged_on,
            SingletonLease.expires_at >= bindparam("c_now"),
        )
        due = and_(
            due,
            or_(IngestItem.staged_on == bindparam("c_node"), IngestItem.staged_on.is_(None), ~node_alive),
        )
    return claim_statement(IngestItem, due, dialect, _COLUMNS, updated_at=bindparam("c_now"))


def claim(
    engine: Engine,
    state: str,
    worker: str,
    lease: timedelta,
    limit: int,
    sources: Sequence[str] | None = None,
    staged_on: str | None = None,
) -> list[Item]:
    """Take up to `limit` due items in `state` (oldest due first) for `lease`.

    With `staged_on`, only items whose bytes sit in that staging area — or in one whose processes stopped holding
    its lease (`staging_lease`: they are gone, and on a cluster their pod's disk with them): their stage then finds
    no staged bytes here and sends the item back to be fetched again.
    """
    now = utcnow()
    statement = _claim_statement(
        engine.dialect.name, tuple(sources) if sources is not None else None, staged_on is not None
    )
    params: dict[str, Any] = {
        "c_state": state,
        "c_now": now,
        "c_worker": worker,
        "c_until": now + lease,
        "c_limit": limit,
    }
    if staged_on is not None:
        params["c_node"] = staged_on
    with engine.begin() as conn:
        return [_item(row) for row in conn.execute(statement, params)]


def _mine(item: Item, worker: str) -> Any:
    return and_(IngestItem.id == item.id, IngestItem.state == item.state, IngestItem.claimed_by == worker)


def renew(engine: Engine, item: Item, worker: str, lease: timedelta) -> None:
    with engine.begin() as conn:
        now = utcnow()
        result = conn.execute(
            update(IngestItem).where(_mine(item, worker)).values(next_attempt_at=now + lease, updated_at=now)
        )
    if result.rowcount != 1:
        raise ClaimLost(f"item {item.id} is no longer claimed by {worker}")


#: The item's own row as it was claimed: every write of a stage is conditional on it.
_MINE = and_(
    IngestItem.id == bindparam("m_id"),
    IngestItem.state == bindparam("m_state"),
    IngestItem.claimed_by == bindparam("m_worker"),
)


@functools.cache
def _advance_statement(columns: frozenset[str]) -> Update:
    # Built once per set of columns: constructing SQLAlchemy expressions costs more than running them on SQLite.
    return update(IngestItem).where(_MINE).values({name: bindparam(f"v_{name}") for name in columns})


def advance(
    target: Engine | Connection, item: Item, worker: str, to_state: str, details: Mapping[str, Any] | None = None,
    hold_for: timedelta | None = None, **columns: Any,
) -> Item | None:  # fmt: skip
    """Move a claimed item to `to_state`, merging `details`; raises `ClaimLost` if the claim is gone.

    With `hold_for`, the worker keeps the claim (a new lease) to run the next stage itself — one commit per stage
    instead of a release and a new claim — and gets the item as it now is.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "state": to_state,
        "claimed_by": worker if hold_for is not None else None,
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": now + hold_for if hold_for is not None else now,
        "updated_at": now,
        **columns,
    }
    merged = {**item.details, **details} if details else item.details
    if details:
        values["details"] = json.dumps(merged, default=str, sort_keys=True)
    statement = _advance_statement(frozenset(values))
    params = {"m_id": item.id, "m_state": item.state, "m_worker": worker, **{f"v_{k}": v for k, v in values.items()}}
    if isinstance(target, Engine):
        with target.begin() as conn:
            result = conn.execute(statement, params)
    else:
        result = target.execute(statement, params)
    if result.rowcount != 1:
        raise ClaimLost(f"item {item.id} is no longer claimed by {worker}")
    if hold_for is None:
        return None
    kept = {name: value for name, value in columns.items() if name in _ITEM_FIELDS}
    return dataclasses.replace(item, state=to_state, attempts=0, details=merged, **kept)


def defer(engine: Engine, item: Item, worker: str, delay: timedelta, error: str, count_attempt: bool = True) -> None:
    """Give the item back for a later try; `count_attempt=False` for waits that are nobody's fault (scanner down)."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(IngestItem)
            .where(_mine(item, worker))
            .values(
                claimed_by=None,
                next_attempt_at=now + delay,
                last_error=error[:4000],
                attempts=item.attempts + (1 if count_attempt else 0),
                updated_at=now,
            )
        )

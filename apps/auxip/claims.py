"""Claiming due rows of a work table (ingestion items, routing deliveries) among competing workers.

A claim is a conditional UPDATE that sets `claimed_by` and pushes `next_attempt_at` to the end of a lease; only the
rows the UPDATE really changed are the caller's. On PostgreSQL the candidate SELECT skips rows other workers hold
locked, so concurrent claimers do not queue on each other; SQLite serialises writers anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite


def claim_due(
    conn: Connection,
    table: Any,
    due: ColumnElement[bool],
    worker: str,
    until: datetime,
    limit: int,
    **values: Any,
) -> list[int]:
    """Ids of up to `limit` rows matching `due` (oldest due first), now claimed by `worker` until `until`."""
    query = select(table.id).where(due).order_by(table.next_attempt_at, table.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(update(table).where(table.id.in_(ids), due).values(claimed_by=worker, next_attempt_at=until, **values))
    return list(conn.execute(select(table.id).where(table.id.in_(ids), table.claimed_by == worker)).scalars())


def insert_ignoring_duplicates(dialect: str, table: Any) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for the dialect: how work is enqueued at most once per unique key."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {dialect!r}")

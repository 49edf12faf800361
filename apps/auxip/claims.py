"""Claiming due rows of a work table (ingestion items, routing deliveries) among competing workers.

A claim is one statement, `UPDATE ... SET claimed_by, next_attempt_at WHERE id IN (SELECT id ... LIMIT n) RETURNING
...`: it sets `claimed_by` and pushes `next_attempt_at` to the end of a lease, and the rows it returns are exactly
the caller's. On PostgreSQL the candidate SELECT locks its rows and skips those other workers hold, so concurrent
claimers do not queue on each other; SQLite serialises writers anyway.

The statement is built once per filter (`claim_statement`) with bound parameters for everything that varies: a
claim runs on every wake-up of every stage loop, and building SQLAlchemy expressions costs several times more than
running the statement itself.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Insert, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite


def claim_statement(
    table: Any, due: ColumnElement[bool], dialect: str, returning: tuple[Any, ...], **values: Any
) -> Update:
    """The claim of up to `:c_limit` rows matching `due` (oldest due first) for `:c_worker` until `:c_until`.

    `due` and `values` may use bound parameters of their own (named `c_...`: an UPDATE reserves the column names);
    the caller passes them with `c_worker`, `c_until` and `c_limit` on every execution.
    """
    candidates = select(table.id).where(due).order_by(table.next_attempt_at, table.id).limit(bindparam("c_limit"))
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(table)
        .where(table.id.in_(candidates.scalar_subquery()))
        .values(claimed_by=bindparam("c_worker"), next_attempt_at=bindparam("c_until"), **values)
        .returning(*returning)
    )


@functools.cache
def insert_ignoring_duplicates(dialect: str, table: Any) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for the dialect: how work is enqueued at most once per unique key.

    Cached: statements are immutable, and this one is built on every discovery poll and routing plan."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {dialect!r}")

"""The two places where the subscriptions' SQL differs between PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Insert, update
from sqlalchemy.orm import Session

from auxip.claims import insert_ignoring_duplicates as insert_ignoring
from auxip.subscriptions.models import MatcherCursor, Notification


def insert_ignoring_duplicates(session: Session) -> Callable[[], Insert]:
    """A factory of `INSERT INTO subscription_notification ... ON CONFLICT DO NOTHING` for the session's dialect."""
    dialect = session.get_bind().dialect.name
    insert_ignoring(dialect, Notification)  # refuses an unsupported dialect now, not at first use
    return lambda: insert_ignoring(dialect, Notification)


def serialise_on_sqlite(session: Session) -> None:
    """On SQLite, take the database write lock now, as the transaction's first statement.

    SQLite has no row locks and ignores FOR UPDATE; two transactions that both read and then write would deadlock
    on the lock upgrade (SQLITE_BUSY without waiting). A no-op write first makes them queue instead (busy_timeout),
    which is what FOR UPDATE gives on PostgreSQL. The same trick as auxip.catalog.clock.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(MatcherCursor).where(MatcherCursor.id == 1).values(id=MatcherCursor.id))

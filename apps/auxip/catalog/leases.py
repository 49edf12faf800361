"""Named leases in the catalog: one process at a time runs a singleton job (eviction), whatever the replica count.

A lease is a row (name, holder, expiry). `hold` takes a free or expired lease, or renews one the caller holds, in
one conditional UPDATE (or the INSERT of a lease never taken): PostgreSQL and SQLite both serialise it, so two
processes never both hold it. A holder that dies stops renewing, and another takes over once the lease expires;
one that stops cleanly gives it back (`release`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, String, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from auxip.catalog.models import Base
from auxip.catalog.types import UTCDateTime


class SingletonLease(Base):
    __tablename__ = "singleton_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


def hold(engine: Engine, name: str, holder: str, duration: timedelta, now: datetime | None = None) -> bool:
    """Take the lease `name` for `holder` (free, expired or already its own) until `now + duration`; True if held."""
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        taken = connection.execute(
            update(SingletonLease)
            .where(SingletonLease.name == name)
            .where((SingletonLease.holder == holder) | (SingletonLease.expires_at < now))
            .values(holder=holder, expires_at=now + duration)
        ).rowcount
    if taken:
        return True
    try:
        with engine.begin() as connection:
            connection.execute(insert(SingletonLease).values(name=name, holder=holder, expires_at=now + duration))
    except IntegrityError:
        return False  # held by another process (or it was inserted by one a moment ago)
    return True


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease back at once (a clean stop), so another replica does not wait for it to expire."""
    with engine.begin() as connection:
        connection.execute(delete(SingletonLease).where(SingletonLease.name == name, SingletonLease.holder == holder))

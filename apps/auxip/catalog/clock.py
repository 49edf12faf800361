"""The publication clock: PublicationDate strictly increasing in commit order.

Why: pollers ask `PublicationDate gt <last seen>`. If a transaction that commits later could carry a PublicationDate
earlier than (or equal to) one a poller has already seen, that product would never be delivered to it. Taking
`now()` per transaction is not enough: two publishers can read the clock in one order and commit in the other, and
two hosts' clocks (or one host's clock stepping back under NTP) can disagree.

Design: one row in `publication_clock` holds the last date handed out. A publishing transaction
1. locks that row (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite a no-op `UPDATE` takes the database write lock,
   which SQLite holds until commit);
2. takes `max(now, last + 1 ms)` on whole milliseconds (or n consecutive milliseconds for a batch), writes it back,
3. inserts its products with those dates and commits, which releases the lock.
The lock serialises publishers from the moment they take a date until their commit, so the order of dates is the
order of commits, and a later commit always gets a strictly later date (so no duplicates either). PostgreSQL makes
a commit visible to new snapshots before it releases the transaction's row locks, so when the next publisher gets
the row, the previous product is already visible. Wall-clock time only makes the dates meaningful; correctness
rests on the lock and on `last + 1 ms`, so a clock stepping back (NTP, another host) cannot break the order.

Why whole milliseconds: the API renders PublicationDate as `...ss.sssZ` (the contract's format) and pollers send
that rendered value back in `gt <last>`. A stored date finer than the rendering would compare greater than its own
rendering, so the poller would get the same product again (and a bulk load within one millisecond would trap it
forever). On the millisecond grid, the rendering is exact and every product has its own rendered value.

Cost: publications are serialised for the duration of one short transaction. The AUXIP publishes a few thousand
files a day, so this is far from a bottleneck; callers must commit right after `reserve_publication_dates`
(`publish_product` and `bulk_load` do) and must not do slow work (I/O, uploads) while holding it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from auxip.catalog.models import PublicationClock

RESOLUTION: Final = timedelta(milliseconds=1)
# The seed value of the single row, older than any real publication.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _on_grid(value: datetime) -> datetime:
    """`value` rounded up to the next whole RESOLUTION step (never earlier than `value`)."""
    remainder = value.microsecond % (RESOLUTION // timedelta(microseconds=1))
    return value if remainder == 0 else value + (RESOLUTION - timedelta(microseconds=remainder))


#: Built once: publishing runs these on every product, and building SQLAlchemy statements costs more than running them.
_TAKE_WRITE_LOCK = update(PublicationClock).where(PublicationClock.id == 1).values(id=PublicationClock.id)
_READ_LAST = select(PublicationClock.last_publication_date).where(PublicationClock.id == 1).with_for_update()
_WRITE_LAST = update(PublicationClock).where(PublicationClock.id == 1).values(last_publication_date=bindparam("c_last"))


def lock_clock(session: Session) -> datetime:
    """Lock the clock row for the rest of the session's transaction and return the last date handed out."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        # SQLite has no row locks and ignores FOR UPDATE; a write takes the RESERVED lock on the whole database,
        # which excludes other writers until this transaction ends. It must be the transaction's first statement
        # (pysqlite opens the transaction right before it), so no stale read snapshot precedes it.
        conn.execute(_TAKE_WRITE_LOCK)
    last = conn.execute(_READ_LAST).scalar_one_or_none()
    if last is None:
        raise RuntimeError("publication_clock is not initialised: run auxip.catalog.migrate.upgrade() first")
    return last


def reserve_publication_dates(
    session: Session, last: datetime, count: int = 1, now: Callable[[], datetime] = _utc_now
) -> list[datetime]:
    """Hand out `count` strictly increasing dates after `last` (the value `lock_clock` returned) and record them.

    The clock row must already be locked by this transaction (`lock_clock`).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    first = max(_on_grid(now().astimezone(UTC)), _on_grid(last) + RESOLUTION)
    dates = [first + index * RESOLUTION for index in range(count)]
    session.connection().execute(_WRITE_LAST, {"c_last": dates[-1]})
    return dates

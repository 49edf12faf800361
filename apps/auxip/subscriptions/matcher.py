"""The matcher step: turn newly published products into outbox rows, once per (subscription, product).

One transaction per batch:
1. lock the cursor row (other matchers wait; SQLite: a no-op UPDATE takes the database write lock),
2. read up to `batch_size` products with PublicationDate > cursor, in PublicationDate order,
3. for each RUNNING subscription submitted before the batch's last product, evaluate its FilterParam IN SQL against
   that batch (compiled filter AND Product.id IN batch AND PublicationDate >= SubmissionDate) and insert the matches
   with ON CONFLICT DO NOTHING,
4. move the cursor to the batch's last PublicationDate and commit.
A crash anywhere before the commit leaves neither rows nor cursor move, and a replay inserts nothing twice (the
outbox primary key), so matching is exactly-once in effect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Insert, Uuid, literal, select, update
from sqlalchemy.orm import Session

from auxip.catalog.models import Product
from auxip.catalog.types import UTCDateTime
from auxip.subscriptions.dialect import insert_ignoring_duplicates, serialise_on_sqlite
from auxip.subscriptions.models import MatcherCursor, Notification, Subscription
from auxip.subscriptions.product_filter import FilterError, ProductFilterCompiler

log = logging.getLogger(__name__)


def lock_cursor(session: Session) -> datetime:
    serialise_on_sqlite(session)
    last = session.execute(
        select(MatcherCursor.last_publication_date).where(MatcherCursor.id == 1).with_for_update()
    ).scalar_one_or_none()
    if last is None:
        raise RuntimeError("subscription_matcher_cursor is not initialised: run auxip.catalog.migrate.upgrade()")
    return last


def match_batch(
    engine: Engine, compile_filter: ProductFilterCompiler, now: datetime, batch_size: int = 500
) -> tuple[int, int]:
    """Process one batch; return (products read, outbox rows created). (0, 0) means caught up."""
    with Session(engine) as session, session.begin():
        cursor = lock_cursor(session)
        batch = session.execute(
            select(Product.id, Product.publication_date)
            .where(Product.publication_date > cursor)
            .order_by(Product.publication_date, Product.id)
            .limit(batch_size)
        ).all()
        if not batch:
            return 0, 0
        batch_ids = [row.id for row in batch]
        newest = batch[-1].publication_date
        subscriptions = session.execute(
            select(Subscription.id, Subscription.filter_param, Subscription.submission_date).where(
                Subscription.status == "running", Subscription.submission_date <= newest
            )
        ).all()
        new_insert = insert_ignoring_duplicates(session)
        created = 0
        for subscription in subscriptions:
            created += _match_one(
                session, new_insert, compile_filter, subscription.id, subscription.filter_param,
                subscription.submission_date, batch_ids, now,
            )  # fmt: skip
        session.execute(update(MatcherCursor).where(MatcherCursor.id == 1).values(last_publication_date=newest))
        return len(batch), created


def _match_one(
    session: Session,
    new_insert: Callable[[], Insert],
    compile_filter: ProductFilterCompiler,
    subscription_id: uuid.UUID,
    filter_param: str,
    submission_date: datetime,
    batch_ids: list[uuid.UUID],
    now: datetime,
) -> int:
    try:
        condition = compile_filter(filter_param)
    except FilterError as exc:
        # Validated at creation; this only happens if the filter language changed since. Skipping one subscription
        # must not stop the others (nor the cursor): it is logged for the operators.
        log.warning("subscription %s: FilterParam no longer compiles, not matched: %s", subscription_id, exc)
        return 0
    values: list[Any] = [
        literal(subscription_id, Uuid()).label("subscription_id"),
        Product.id.label("product_id"),
        literal("pending").label("status"),
        literal(0).label("attempts"),
        literal(now, UTCDateTime()).label("created_at"),
        literal(now, UTCDateTime()).label("next_attempt_at"),
    ]
    matches = select(*values).where(Product.id.in_(batch_ids), Product.publication_date >= submission_date, condition)
    statement = new_insert().from_select(
        ["subscription_id", "product_id", "status", "attempts", "created_at", "next_attempt_at"], matches
    )
    # RETURNING counts the rows really inserted (conflicts excluded) on both backends; psycopg's rowcount for
    # INSERT ... SELECT ... ON CONFLICT is not reliable through SQLAlchemy.
    return len(session.execute(statement.returning(Notification.product_id)).all())


def match_all(
    engine: Engine,
    compile_filter: ProductFilterCompiler,
    now: Callable[[], datetime],
    batch_size: int = 500,
    max_batches: int = 100,
) -> tuple[int, int]:
    """Run batches until caught up (or `max_batches`, so one call stays bounded); return totals."""
    products = created = 0
    for _ in range(max_batches):
        read, inserted = match_batch(engine, compile_filter, now(), batch_size)
        products += read
        created += inserted
        if read < batch_size:
            break
    return products, created

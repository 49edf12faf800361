"""The notifier's database side: claim due outbox rows, then record each delivery's outcome.

Claiming takes a lease instead of holding a transaction open across the HTTP call: the rows are locked with
FOR UPDATE SKIP LOCKED (PostgreSQL; concurrent notifiers take disjoint rows without waiting), their next_attempt_at
is pushed to now + lease and the claim commits. Another notifier skips them until the lease ends, so a row is sent
by one worker at a time, and a worker that dies mid-delivery only delays the row by the lease. The one duplicate
no outbox can rule out remains: a crash after the endpoint received the POST but before the outcome commits (then
the endpoint sees it again after the lease; delivery is at-least-once across such crashes, exactly-once otherwise).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from auxip.catalog.models import Product
from auxip.subscriptions.delivery import Delivery
from auxip.subscriptions.dialect import serialise_on_sqlite
from auxip.subscriptions.models import Notification, Subscription
from auxip.subscriptions.retry import RetryPolicy


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    attempts: int  # including the one about to be made
    created_at: datetime


def claim_due(engine: Engine, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Lease up to `limit` due pending notifications of running subscriptions, oldest due first."""
    with Session(engine) as session, session.begin():
        serialise_on_sqlite(session)
        rows = session.execute(
            select(
                Notification.subscription_id,
                Notification.product_id,
                Notification.attempts,
                Notification.created_at,
                Product.name,
                Subscription.notification_endpoint,
                Subscription.endpoint_username,
                Subscription.endpoint_password,
            )
            .join(Subscription, Subscription.id == Notification.subscription_id)
            .join(Product, Product.id == Notification.product_id)
            # Paused subscriptions keep their pending rows for when they resume.
            .where(
                Notification.status == "pending", Notification.next_attempt_at <= now, Subscription.status == "running"
            )
            # Oldest due first, then in publication order, so an endpoint hears of products in the order published.
            .order_by(Notification.next_attempt_at, Product.publication_date, Notification.subscription_id)
            .limit(limit)
            .with_for_update(of=Notification, skip_locked=True)
        ).all()
        claimed: list[Claimed] = []
        for row in rows:
            session.execute(
                update(Notification)
                .where(Notification.subscription_id == row.subscription_id, Notification.product_id == row.product_id)
                .values(next_attempt_at=now + lease, attempts=Notification.attempts + 1)
            )
            delivery = Delivery(
                subscription_id=row.subscription_id,
                product_id=row.product_id,
                product_name=row.name,
                endpoint=row.notification_endpoint,
                username=row.endpoint_username,
                password=row.endpoint_password,
            )
            claimed.append(Claimed(delivery, row.attempts + 1, row.created_at))
        return claimed


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    error: str | None  # None = delivered
    sent_at: datetime


def record_outcomes(engine: Engine, outcomes: list[Outcome], now: datetime, policy: RetryPolicy) -> tuple[int, int]:
    """Mark delivered rows, reschedule or fail the others; return (delivered, failed for good)."""
    delivered = failed = 0
    # A fixed lock order (subscriptions by id, then outbox rows by key) so concurrent notifiers and a concurrent
    # Cancel (subscription row, then its outbox rows) cannot deadlock.
    outcomes = sorted(outcomes, key=lambda o: (o.claimed.delivery.subscription_id, o.claimed.delivery.product_id))
    latest: dict[uuid.UUID, datetime] = {}
    with Session(engine) as session, session.begin():
        serialise_on_sqlite(session)
        subscription_ids = sorted({o.claimed.delivery.subscription_id for o in outcomes})
        session.execute(
            select(Subscription.id)
            .where(Subscription.id.in_(subscription_ids))
            .order_by(Subscription.id)
            # FOR NO KEY UPDATE: does not block the matcher's foreign-key checks (KEY SHARE) on these rows.
            .with_for_update(key_share=True)
        ).all()
        for outcome in outcomes:
            delivery = outcome.claimed.delivery
            row = (
                Notification.subscription_id == delivery.subscription_id,
                Notification.product_id == delivery.product_id,
                Notification.status == "pending",
            )
            if outcome.error is None:
                session.execute(
                    update(Notification)
                    .where(*row)
                    .values(status="delivered", delivered_at=outcome.sent_at, last_error=None)
                )
                previous = latest.get(delivery.subscription_id)
                latest[delivery.subscription_id] = max(previous or outcome.sent_at, outcome.sent_at)
                delivered += 1
            elif policy.gives_up(outcome.claimed.attempts, outcome.claimed.created_at, now):
                session.execute(update(Notification).where(*row).values(status="failed", last_error=outcome.error))
                failed += 1
            else:
                retry_at = now + policy.delay(outcome.claimed.attempts)
                session.execute(
                    update(Notification).where(*row).values(next_attempt_at=retry_at, last_error=outcome.error)
                )
        for subscription_id in sorted(latest):
            _record_last_notification(session, subscription_id, latest[subscription_id])
    return delivered, failed


def _record_last_notification(session: Session, subscription_id: uuid.UUID, sent_at: datetime) -> None:
    # Deliveries may complete out of order; LastNotificationDate only moves forward.
    session.execute(
        update(Subscription)
        .where(
            Subscription.id == subscription_id,
            or_(Subscription.last_notification_date.is_(None), Subscription.last_notification_date < sent_at),
        )
        .values(last_notification_date=sent_at)
    )

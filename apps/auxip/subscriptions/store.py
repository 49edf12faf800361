"""Subscription reads and state changes for the API, with ownership applied in every query."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Select, func, select, true, update
from sqlalchemy.orm import Session

from auxip.catalog.clock import RESOLUTION
from auxip.subscriptions.matcher import lock_cursor
from auxip.subscriptions.models import Notification, Subscription

Action = Literal["Pause", "Resume", "Cancel"]

# action -> (statuses it may start from, status it leads to). Cancelled is final: only Cancel accepts it (a no-op).
TRANSITIONS: Final[dict[Action, tuple[tuple[str, ...], str]]] = {
    "Pause": (("running", "paused"), "paused"),
    "Resume": (("paused", "running"), "running"),
    "Cancel": (("running", "paused", "cancelled"), "cancelled"),
}


@dataclass(frozen=True)
class Caller:
    username: str
    # Reporting and Admin users see and manage every subscription.
    sees_all: bool


class TransitionError(Exception):
    """The action is not allowed from the subscription's current status."""


@dataclass(frozen=True)
class NewSubscription:
    filter_param: str
    endpoint: str
    username: str | None
    password: str | None


def create(session: Session, caller: Caller, new: NewSubscription, clock: Callable[[], datetime]) -> Subscription:
    """Insert a running subscription; its SubmissionDate is taken under the matcher cursor lock.

    Why the lock: the matcher reads the running subscriptions once per batch. Holding its cursor row while the
    subscription is inserted means every batch either ran before (and covered only products published before the
    SubmissionDate chosen below) or runs after the commit (and sees the subscription), so no product with
    PublicationDate >= SubmissionDate is ever skipped. SubmissionDate is rounded up to the millisecond, the
    precision the API renders (`SubmissionDate eq <the value read>` must match), and is after the cursor even
    if PublicationDates run ahead of this host's clock.
    """
    last_matched = lock_cursor(session)
    now = _ceil_millisecond(max(clock(), last_matched + RESOLUTION))
    # Wait out the rounding (under 1 ms): a product published after the commit then gets PublicationDate >= now.
    remaining = (now - clock()).total_seconds()
    if remaining > 0:
        time.sleep(min(remaining, 0.002))
    subscription = Subscription(
        id=uuid.uuid4(),
        owner=caller.username,
        status="running",
        filter_param=new.filter_param,
        submission_date=now,
        last_notification_date=None,
        notification_endpoint=new.endpoint,
        endpoint_username=new.username,
        endpoint_password=new.password,
    )
    session.add(subscription)
    session.commit()
    return subscription


def _ceil_millisecond(value: datetime) -> datetime:
    truncated = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return truncated if truncated == value else truncated + timedelta(milliseconds=1)


def _visible(caller: Caller) -> ColumnElement[bool]:
    return true() if caller.sees_all else Subscription.owner == caller.username


def get(session: Session, caller: Caller, subscription_id: uuid.UUID) -> Subscription | None:
    """The subscription if the caller may see it; someone else's is reported as absent, not as forbidden."""
    return session.execute(
        select(Subscription).where(Subscription.id == subscription_id, _visible(caller))
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Page:
    items: list[Subscription]
    count: int | None


def list_page(
    session: Session,
    caller: Caller,
    condition: ColumnElement[bool] | None,
    order_by: list[Any],
    limit: int,
    skip: int,
    with_count: bool,
) -> Page:
    query: Select[tuple[Subscription]] = select(Subscription).where(_visible(caller))
    if condition is not None:
        query = query.where(condition)
    count = None
    if with_count:
        count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    # `order_by` must end with a unique key (QueryOptions.order_clauses appends Id) for stable paging.
    items = session.execute(query.order_by(*order_by).offset(skip).limit(limit)).scalars().all()
    return Page(list(items), count)


def apply_action(session: Session, caller: Caller, subscription_id: uuid.UUID, action: Action) -> Subscription | None:
    """Apply a bound action atomically; None if not visible, `TransitionError` if not allowed from its status."""
    subscription = session.execute(
        select(Subscription).where(Subscription.id == subscription_id, _visible(caller)).with_for_update(key_share=True)
    ).scalar_one_or_none()
    if subscription is None:
        return None
    allowed_from, target = TRANSITIONS[action]
    if subscription.status not in allowed_from:
        raise TransitionError(f"cannot {action.lower()} a {subscription.status} subscription")
    subscription.status = target
    if target == "cancelled":
        # Cancelled never notifies: its queued notifications are closed now rather than left pending forever.
        session.execute(
            update(Notification)
            .where(Notification.subscription_id == subscription_id, Notification.status == "pending")
            .values(status="failed", last_error="subscription cancelled")
        )
    session.commit()
    return subscription

"""Matching and delivery against a real database and the real local notification endpoint."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from auxip.api.formats import odata_timestamp
from auxip.subscriptions import store
from auxip.subscriptions.matcher import match_all
from auxip.subscriptions.models import MatcherCursor, Notification, Subscription
from auxip.subscriptions.notifier import claim_due
from auxip.subscriptions.product_filter import compile_product_filter
from auxip.subscriptions.retry import RetryPolicy
from auxip.subscriptions.service import SubscriptionService
from auxip_testing.notification_recorder import NotificationRecorder

from .conftest import Publish

AUX = "S1A_OPER_AUX_POEORB_OPOD_{}_V20260101T000000_20260102T000000.EOF.zip"
MPL = "S1A_OPER_MPL_ORBPRE_20260101T000000_20260108T000000_{:04d}.EOF.zip"
POLICY = RetryPolicy(base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=5), max_attempts=4, jitter=0.5)


class Clock:
    """Real time plus an offset the test moves forward (to make retries and leases due without sleeping)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def _service(engine: Engine, clock: Clock) -> SubscriptionService:
    return SubscriptionService(engine, retry=POLICY, now=clock, http_timeout=timedelta(seconds=3))


def _subscribe(
    engine: Engine, recorder: NotificationRecorder, filter_param: str = "contains(Name,'_AUX_')", owner: str = "alice"
) -> uuid.UUID:
    new = store.NewSubscription(filter_param, recorder.url, recorder.username, recorder.password)
    with Session(engine, expire_on_commit=False) as session:
        return store.create(session, store.Caller(owner, False), new, lambda: datetime.now(UTC)).id


def _act(engine: Engine, subscription_id: uuid.UUID, action: store.Action) -> None:
    with Session(engine) as session:
        assert store.apply_action(session, store.Caller("alice", False), subscription_id, action) is not None


def _outbox(engine: Engine) -> list[tuple[uuid.UUID, uuid.UUID, str, int]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Notification.subscription_id, Notification.product_id, Notification.status, Notification.attempts)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _pairs(recorder: NotificationRecorder) -> list[tuple[str, str]]:
    return [(body["SubscriptionId"], body["ProductId"]) for body in recorder.received]


async def test_notifies_matching_products_published_after_submission_only(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    before = publish(AUX.format("20260101T000000"))
    subscription_id = _subscribe(engine, notification_recorder)
    matching = publish(AUX.format("20260101T010000"))
    publish(MPL.format(1))
    clock = Clock()
    async with _service(engine, clock) as service:
        report = await service.run_once()
    assert (report.notifications_created, report.delivered, report.retried, report.failed) == (1, 1, 0, 0)
    assert before != matching

    (call,) = notification_recorder.calls
    assert call.authorization == notification_recorder.expected_authorization()
    body = call.json()
    assert set(body) == {"@odata.context", "ProductId", "ProductName", "SubscriptionId", "NotificationDate"}
    assert body["@odata.context"] == "$metadata#Notification/$entity"
    assert body["ProductId"] == str(matching)
    assert body["ProductName"] == AUX.format("20260101T010000")
    assert body["SubscriptionId"] == str(subscription_id)
    with Session(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        assert subscription.last_notification_date is not None
        assert odata_timestamp(subscription.last_notification_date) == body["NotificationDate"]
    assert _outbox(engine) == [(subscription_id, matching, "delivered", 1)]

    # The call-logs endpoint ESA's suite reads (ServerLogsUrl), in the Postman mock shape.
    logs = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(notification_recorder.call_logs_url)))  # noqa: S310
    assert logs == {"call-logs": [{"request": {"body": {"data": call.body}}}]}


@pytest.mark.parametrize("down_mode", ["503", "closed"])
async def test_endpoint_down_then_up_delivers_exactly_once(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder, down_mode: str
) -> None:
    subscription_id = _subscribe(engine, notification_recorder)
    product_id = publish(AUX.format("20260101T010000"))
    clock = Clock()
    notification_recorder.set_down("503" if down_mode == "503" else "closed")
    async with _service(engine, clock) as service:
        report = await service.run_once()
        assert (report.delivered, report.retried) == (0, 1)
        assert notification_recorder.received == []
        assert len(notification_recorder.calls) == (1 if down_mode == "503" else 0)

        notification_recorder.set_up()
        # Backoff: not retried before it is due (at least base_delay * (1 - jitter) = 15 s).
        clock.advance(timedelta(seconds=10))
        assert (await service.run_once()).delivered == 0
        clock.advance(POLICY.base_delay)
        assert (await service.run_once()).delivered == 1
        assert (await service.run_once()).delivered == 0

    assert _pairs(notification_recorder) == [(str(subscription_id), str(product_id))]
    assert _outbox(engine) == [(subscription_id, product_id, "delivered", 2)]


async def test_gives_up_after_max_attempts(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    _subscribe(engine, notification_recorder)
    publish(AUX.format("20260101T010000"))
    notification_recorder.set_down("503")
    clock = Clock()
    async with _service(engine, clock) as service:
        reports = []
        for _ in range(POLICY.max_attempts + 2):
            reports.append(await service.run_once())
            clock.advance(POLICY.max_delay)
    assert [r.retried for r in reports] == [1, 1, 1, 0, 0, 0]
    assert [r.failed for r in reports] == [0, 0, 0, 1, 0, 0]
    assert len(notification_recorder.calls) == POLICY.max_attempts
    with Session(engine) as session:
        row = session.execute(select(Notification)).scalar_one()
        assert (row.status, row.attempts, row.last_error) == ("failed", 4, "HTTP 503 Service Unavailable")


async def test_duplicate_matching_and_worker_crashes_still_deliver_once(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    clock = Clock()
    subscription_id = _subscribe(engine, notification_recorder)
    first = publish(AUX.format("20260101T010000"))
    second = publish(AUX.format("20260101T020000"))

    # Matched twice (a replay, a second matcher): the outbox still has one row per pair.
    assert match_all(engine, compile_product_filter, clock) == (2, 2)
    assert match_all(engine, compile_product_filter, clock) == (0, 0)
    # A worker crashed after claiming `first`'s row: that claim is leased, never released.
    claimed = claim_due(engine, clock(), timedelta(minutes=2), limit=1)
    assert [c.delivery.product_id for c in claimed] == [first]

    # A new worker instance on the same database: delivers the unclaimed row now, the leased one after the lease.
    async with _service(engine, clock) as service:
        assert (await service.run_once()).delivered == 1
        assert (await service.run_once()).delivered == 0
    clock.advance(timedelta(minutes=3))
    async with _service(engine, clock) as service:
        assert (await service.run_once()).delivered == 1
    async with _service(engine, clock) as service:
        report = await service.run_once()
        assert (report.products_matched, report.notifications_created, report.delivered) == (0, 0, 0)

    assert sorted(_pairs(notification_recorder)) == sorted(
        [(str(subscription_id), str(first)), (str(subscription_id), str(second))]
    )


async def test_concurrent_workers_deliver_each_pair_once(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    subscriptions = [_subscribe(engine, notification_recorder) for _ in range(2)]
    products = [publish(AUX.format(f"20260101T{hour:02d}0000")) for hour in range(10)]
    clock = Clock()
    services = [SubscriptionService(engine, retry=POLICY, now=clock, claim_limit=3, batch_size=4) for _ in range(3)]
    try:
        await asyncio.gather(*(service.run_once() for service in services))
        await asyncio.gather(*(service.run_once() for service in services))
    finally:
        await asyncio.gather(*(service.close() for service in services))
    expected = sorted((str(s), str(p)) for s in subscriptions for p in products)
    assert sorted(_pairs(notification_recorder)) == expected


async def test_paused_subscription_waits_until_resumed(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    clock = Clock()
    subscription_id = _subscribe(engine, notification_recorder)
    queued = publish(AUX.format("20260101T010000"))
    assert match_all(engine, compile_product_filter, clock) == (1, 1)
    _act(engine, subscription_id, "Pause")
    # Published while paused: only running subscriptions match, so this one is never notified.
    publish(AUX.format("20260101T020000"))
    async with _service(engine, clock) as service:
        assert (await service.run_once()).delivered == 0
        assert notification_recorder.calls == []
        _act(engine, subscription_id, "Resume")
        assert (await service.run_once()).delivered == 1
        resumed_later = publish(AUX.format("20260101T030000"))
        assert (await service.run_once()).delivered == 1
    assert _pairs(notification_recorder) == [
        (str(subscription_id), str(queued)),
        (str(subscription_id), str(resumed_later)),
    ]


async def test_cancelled_subscription_never_notifies(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    clock = Clock()
    subscription_id = _subscribe(engine, notification_recorder)
    queued = publish(AUX.format("20260101T010000"))
    assert match_all(engine, compile_product_filter, clock) == (1, 1)
    _act(engine, subscription_id, "Cancel")
    publish(AUX.format("20260101T020000"))
    async with _service(engine, clock) as service:
        report = await service.run_once()
        clock.advance(timedelta(days=1))
        await service.run_once()
    assert (report.notifications_created, report.delivered) == (0, 0)
    assert notification_recorder.calls == []
    assert _outbox(engine) == [(subscription_id, queued, "failed", 0)]


async def test_each_subscription_gets_only_its_own_matches(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    orbits = _subscribe(engine, notification_recorder, "contains(Name,'POEORB')")
    planning = _subscribe(engine, notification_recorder, "startswith(Name,'S1A_OPER_MPL_') and ContentLength gt 10")
    orbit = publish(AUX.format("20260101T010000"))
    plan = publish(MPL.format(7))
    async with _service(engine, Clock()) as service:
        assert (await service.run_once()).delivered == 2
    assert sorted(_pairs(notification_recorder)) == sorted([(str(orbits), str(orbit)), (str(planning), str(plan))])


async def test_filter_param_with_attribute_lambdas_is_evaluated_in_sql(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    # The same language as Products?$filter (auxip.odata), attribute lambdas included.
    wind = _subscribe(
        engine,
        notification_recorder,
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        "and att/OData.CSC.StringAttribute/Value eq 'AUX_WND') and startswith(Name,'S1')",
    )
    orbit = _subscribe(
        engine,
        notification_recorder,
        "Attributes/OData.CSC.IntegerAttribute/any(a:a/Name eq 'orbitNumber' "
        "and a/OData.CSC.IntegerAttribute/Value ge 100)",
    )
    wnd = publish("S1__AUX_WND_V20260101T000000_G20260101T060059.SAFE.zip", {"productType": "AUX_WND"})
    publish("S1__AUX_WAV_V20260101T000000_G20260101T060059.SAFE.zip", {"productType": "AUX_WAV"})
    publish(AUX.format("20260101T010000"), {"productType": "AUX_POEORB", "orbitNumber": 99})
    high = publish(AUX.format("20260101T020000"), {"productType": "AUX_POEORB", "orbitNumber": 100})
    async with _service(engine, Clock()) as service:
        assert (await service.run_once()).delivered == 2
    assert sorted(_pairs(notification_recorder)) == sorted([(str(wind), str(wnd)), (str(orbit), str(high))])


async def test_run_forever_stops_on_event(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    _subscribe(engine, notification_recorder)
    publish(AUX.format("20260101T010000"))
    stop = asyncio.Event()
    service = SubscriptionService(engine)
    task = asyncio.create_task(service.run_forever(stop, interval=0.05))
    received = await asyncio.to_thread(notification_recorder.wait_for, 1)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert len(received) == 1


@pytest.mark.integration
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_claims_skip_rows_locked_by_another_worker(
    engine: Engine, publish: Publish, notification_recorder: NotificationRecorder
) -> None:
    clock = Clock()
    subscription_id = _subscribe(engine, notification_recorder)
    first = publish(AUX.format("20260101T010000"))
    second = publish(AUX.format("20260101T020000"))
    assert match_all(engine, compile_product_filter, clock) == (2, 2)
    with engine.connect() as other:
        # Another worker's claim transaction, still open, holding `first`'s row.
        other.execute(
            select(Notification.product_id)
            .where(Notification.subscription_id == subscription_id, Notification.product_id == first)
            .with_for_update()
        ).all()
        # This claim neither waits for it nor takes it.
        claimed = claim_due(engine, clock(), timedelta(minutes=2), limit=10)
        assert [c.delivery.product_id for c in claimed] == [second]
        other.rollback()
    assert [c.delivery.product_id for c in claim_due(engine, clock(), timedelta(minutes=2), limit=10)] == [first]


def test_submission_date_is_after_every_product_already_matched(
    engine: Engine, notification_recorder: NotificationRecorder
) -> None:
    # PublicationDates may run ahead of this host's clock (bursts, another host); products the matcher has already
    # passed must still be before SubmissionDate, or they would match a subscription that never saw them.
    ahead = datetime.now(UTC) + timedelta(hours=1, microseconds=1500)
    with Session(engine) as session, session.begin():
        session.execute(update(MatcherCursor).values(last_publication_date=ahead))
    subscription_id = _subscribe(engine, notification_recorder)
    with Session(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        assert subscription.submission_date > ahead
        assert subscription.submission_date.microsecond % 1000 == 0
        # The next whole millisecond strictly after the cursor: at most two grid steps away.
        assert subscription.submission_date - ahead <= timedelta(milliseconds=2)

"""The compiler is generic: a tiny ad-hoc Subscriptions-like table (enum Status, FilterParam, dates, Guid key)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, Uuid, create_engine, insert, select

from auxip.api.errors import ODataError
from auxip.catalog.types import UTCDateTime
from auxip.odata import EdmType, Entity, EnumType, Property, parse_query_options

metadata = MetaData()
subscription = Table(
    "subscription",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("filter_param", String(8192), nullable=False),
    Column("submission_date", UTCDateTime, nullable=False),
    Column("endpoint", String(1024), nullable=False),
)
STATUS = EnumType("OData.CSC.SubscriptionStatus", frozenset({"running", "paused", "cancelled"}))
SUBSCRIPTIONS = Entity(
    name="Subscriptions",
    table=subscription,
    key="Id",
    properties={
        "Id": Property(subscription.c.id, EdmType.GUID),
        "Status": Property(subscription.c.status, EdmType.ENUM, enum_type=STATUS),
        "FilterParam": Property(subscription.c.filter_param, EdmType.STRING),
        "SubmissionDate": Property(subscription.c.submission_date, EdmType.DATETIME),
        "NotificationEndpoint": Property(subscription.c.endpoint, EdmType.STRING),
    },
    selectable=frozenset({"Id", "Status", "FilterParam", "SubmissionDate", "NotificationEndpoint"}),
)
ROWS = {
    "one": ("running", "contains(Name,'_AUX_')", "2024-01-01T00:00:00", "https://a.example/notify"),
    "two": ("paused", "startswith(Name,'S1A')", "2024-02-01T00:00:00", "https://b.example/notify"),
    "three": ("cancelled", "contains(Name,'_aux_')", "2024-03-01T00:00:00", "https://a.example/notify"),
}
IDS = {key: uuid.UUID(int=index + 1) for index, key in enumerate(ROWS)}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    metadata.create_all(eng)
    with eng.begin() as conn:
        conn.execute(
            insert(subscription),
            [
                {
                    "id": IDS[key],
                    "status": status,
                    "filter_param": filter_param,
                    "submission_date": datetime.fromisoformat(date).replace(tzinfo=UTC),
                    "endpoint": endpoint,
                }
                for key, (status, filter_param, date, endpoint) in ROWS.items()
            ],
        )
    yield eng
    eng.dispose()


def _keys(engine: Engine, params: dict[str, str]) -> list[str]:
    options = parse_query_options(params, SUBSCRIPTIONS)
    query = select(subscription.c.id).order_by(*options.order_clauses()).offset(options.skip).limit(options.limit)
    if options.where is not None:
        query = query.where(options.where)
    by_id = {value: key for key, value in IDS.items()}
    with engine.connect() as conn:
        return [by_id[row] for row in conn.execute(query).scalars()]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("Status eq OData.CSC.SubscriptionStatus'running'", ["one"]),
        ("Status ne OData.CSC.SubscriptionStatus'running'", ["two", "three"]),
        ("Status eq 'paused'", ["two"]),
        ("Status in (OData.CSC.SubscriptionStatus'paused', OData.CSC.SubscriptionStatus'cancelled')", ["two", "three"]),
        ("contains(FilterParam,'_AUX_')", ["one"]),
        ("contains(FilterParam,'_aux_')", ["three"]),
        ("SubmissionDate ge 2024-02-01T00:00:00.000Z", ["two", "three"]),
        ("NotificationEndpoint eq 'https://a.example/notify'", ["one", "three"]),
        (f"Id eq {IDS['two']}", ["two"]),
        (
            "not (Status eq OData.CSC.SubscriptionStatus'cancelled') and startswith(NotificationEndpoint,'https://a.')",
            ["one"],
        ),
    ],
)
def test_subscription_filters(engine: Engine, filter_text: str, expected: list[str]) -> None:
    assert _keys(engine, {"$filter": filter_text, "$orderby": "SubmissionDate"}) == expected


def test_subscription_orderby(engine: Engine) -> None:
    assert _keys(engine, {"$orderby": "NotificationEndpoint desc"}) == ["two", "one", "three"]


@pytest.mark.parametrize(
    ("filter_text", "message"),
    [
        (
            "Status eq OData.CSC.MetricType'Gauge'",
            "Status is a OData.CSC.SubscriptionStatus, not a OData.CSC.MetricType",
        ),
        ("Status eq OData.CSC.SubscriptionStatus'sleeping'", "'sleeping' is not a OData.CSC.SubscriptionStatus member"),
        ("Status gt OData.CSC.SubscriptionStatus'paused'", "'gt' does not apply to Status"),
        ("Status eq 1", "wrong literal type for Status"),
        ("Name eq 'x'", "unknown property 'Name' of Subscriptions"),
        (
            "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'x')",
            "'Attributes' is not a collection of Subscriptions",
        ),
    ],
)
def test_subscription_errors(filter_text: str, message: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_query_options({"$filter": filter_text}, SUBSCRIPTIONS)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_enum_property_requires_its_type() -> None:
    with pytest.raises(ValueError, match="enum_type"):
        Property(subscription.c.status, EdmType.ENUM)

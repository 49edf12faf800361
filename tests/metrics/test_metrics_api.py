"""`GET /odata/v1/Metrics` on a live API whose catalog and download records give each metric a known value.

Products (name, type, unit or None for `S1_`, size, published how long before the test, origin to publication):

- POE_A1, POE_A2: AUX_POEORB / A, 1000 and 3000 bytes, published 1 h ago, 100 s and 300 s after their origin;
- POE_B: AUX_POEORB / B, 500 bytes, 1 h ago, 60 s;
- WND_1: AUX_WND unit-independent, 700 bytes, 1 h ago, 40 s;
- WND_2: AUX_WND unit-independent, 800 bytes, 10 days ago (Monthly window only), 1000 s;
- CAL: AUX_CAL / A, 200 bytes, 40 days ago (in no window), evicted: still counted as published, not online.

Downloads, done through the API: alice (Download role) fetches POE_A1 twice and WND_1 once, bob fetches POE_B once.
Inserted directly: one failed download of POE_A1 by bob (123 bytes sent) and one in-progress download of POE_B by
alice (not counted until it ends). PublicationDate and OriginDate are set by SQL after publication, because the
publication clock stamps "now" and the windows are relative to the request time.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from auxip.auth import Role
from auxip.auth.models import DownloadRecord
from auxip.catalog.models import Product
from auxip.catalog.publish import publish_product
from auxip.catalog.records import AttributeValue, ProductRecord
from auxip_testing.api_server import ApiServer, default_config, run_api
from auxip_testing.postgres import PostgresServer

PASSWORD = "metrics-password-1"  # noqa: S105 - throwaway users of a temporary catalog
REPORTER, ADMIN, ALICE, BOB = "reporter", "operator", "alice", "bob"


@dataclass(frozen=True)
class Fixture:
    """One product of the catalog: see the module docstring."""

    key: str
    name: str
    product_type: str
    unit: str | None
    size: int
    published_ago: timedelta
    origin_to_publication: timedelta
    evicted: bool = False


HOUR = timedelta(hours=1)
PRODUCTS = [
    Fixture("POE_A1", "S1A_OPER_AUX_POEORB_OPOD_20250101T120000_V20241231T225942_20250102T005942.EOF.zip",
            "AUX_POEORB", "A", 1000, HOUR, timedelta(seconds=100)),
    Fixture("POE_A2", "S1A_OPER_AUX_POEORB_OPOD_20250102T120000_V20250101T225942_20250103T005942.EOF.zip",
            "AUX_POEORB", "A", 3000, HOUR, timedelta(seconds=300)),
    Fixture("POE_B", "S1B_OPER_AUX_POEORB_OPOD_20250101T120000_V20241231T225942_20250102T005942.EOF.zip",
            "AUX_POEORB", "B", 500, HOUR, timedelta(seconds=60)),
    Fixture("WND_1", "S1__AUX_WND_V20250101T060000_20250101T120000_G20250101T050000.SAFE.zip",
            "AUX_WND", None, 700, HOUR, timedelta(seconds=40)),
    Fixture("WND_2", "S1__AUX_WND_V20250102T060000_20250102T120000_G20250102T050000.SAFE.zip",
            "AUX_WND", None, 800, timedelta(days=10), timedelta(seconds=1000)),
    Fixture("CAL", "S1A_AUX_CAL_V20250101T000000_G20241231T100000.SAFE.zip",
            "AUX_CAL", "A", 200, timedelta(days=40), timedelta(seconds=5), evicted=True),
]  # fmt: skip


@dataclass(frozen=True)
class MetricsApi:
    server: ApiServer
    ids: dict[str, uuid.UUID]

    @property
    def url(self) -> str:
        return f"{self.server.service_root}/Metrics"

    def get(self, user: str | None = REPORTER, **params: str) -> requests.Response:
        auth = (user, PASSWORD) if user is not None else None
        return requests.get(self.url, params=params, auth=auth, timeout=30)

    def values(self, **params: str) -> dict[str, dict[str, object]]:
        """Metric name -> entity, for a query that must succeed."""
        response = self.get(**params)
        assert response.status_code == 200, response.text
        return {metric["Name"]: metric for metric in response.json()["value"]}


def _content(name: str, size: int) -> bytes:
    seed = name.encode() + b"\n"
    return (seed * (size // len(seed) + 1))[:size]


def _record(product: Fixture, data: bytes) -> ProductRecord:
    attributes: dict[str, AttributeValue] = {"productType": product.product_type, "platformShortName": "SENTINEL-1"}
    if product.unit is not None:
        attributes["platformSerialIdentifier"] = product.unit
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return ProductRecord(
        name=product.name,
        content_length=len(data),
        checksums={"MD5": hashlib.md5(data, usedforsecurity=False).hexdigest()},
        origin_date=start,
        content_date_start=start,
        retention=timedelta(days=3650),
        attributes=attributes,
        storage_key=f"products/{product.name}",
    )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _publish(server: ApiServer) -> dict[str, uuid.UUID]:
    now = datetime.now(UTC)
    ids: dict[str, uuid.UUID] = {}
    for product in PRODUCTS:
        data = _content(product.name, product.size)
        record = _record(product, data)
        server.call(server.storage.put_stream(record.storage_key, _chunks(data)))
        ids[product.key] = publish_product(server.engine, record).id
        published = now - product.published_ago
        values = {"publication_date": published, "origin_date": published - product.origin_to_publication}
        if product.evicted:
            values["evicted_at"] = now
        with Session(server.engine) as session, session.begin():
            session.execute(update(Product).where(Product.id == ids[product.key]).values(**values))
    return ids


def _download(api: MetricsApi, user: str, key: str) -> None:
    url = f"{api.server.service_root}/Products({api.ids[key]})/$value"
    response = requests.get(url, auth=(user, PASSWORD), timeout=30)
    assert response.status_code == 200, response.text
    size = next(p.size for p in PRODUCTS if p.key == key)
    assert len(response.content) == size


def _wait_until_recorded(server: ApiServer, expected: int) -> None:
    """The record is finished after the last byte is sent, so the client can be ahead of it."""
    deadline = time.monotonic() + 10
    finished = select(func.count()).where(DownloadRecord.status != "in_progress")
    while True:
        with Session(server.engine) as session:
            if session.scalar(finished) == expected:
                return
        assert time.monotonic() < deadline, "download records were not finished within 10 s"
        time.sleep(0.05)


def _insert_record(server: ApiServer, user: str, product_id: uuid.UUID, sent: int, status: str) -> None:
    now = datetime.now(UTC)
    row = {
        "username": user,
        "product_id": product_id,
        "product_name": "-",
        "product_type": "AUX_POEORB",
        "started_at": now,
        "finished_at": now if status != "in_progress" else None,
        "bytes": sent,
        "status": status,
    }
    with Session(server.engine) as session, session.begin():
        session.execute(insert(DownloadRecord), [row])


def build(server: ApiServer) -> MetricsApi:
    server.add_user(REPORTER, PASSWORD, Role.REPORTING)
    server.add_user(ADMIN, PASSWORD, Role.ADMIN)
    server.add_user(ALICE, PASSWORD, Role.DOWNLOAD)
    server.add_user(BOB, PASSWORD, Role.DOWNLOAD)
    api = MetricsApi(server, _publish(server))
    for user, key in ((ALICE, "POE_A1"), (ALICE, "POE_A1"), (ALICE, "WND_1"), (BOB, "POE_B")):
        _download(api, user, key)
    _wait_until_recorded(server, 4)
    _insert_record(server, BOB, api.ids["POE_A1"], 123, "failed")
    _insert_record(server, ALICE, api.ids["POE_B"], 500, "in_progress")
    return api


@contextlib.contextmanager
def serve(data_dir: Path, **overrides: object) -> Iterator[MetricsApi]:
    with run_api(default_config(data_dir, **overrides), notify_interval=None) as server:
        yield build(server)


def fresh_database(postgres: PostgresServer) -> str:
    """A new empty database on the session's cluster (each server migrates and owns its own catalog)."""
    return postgres.create_database("metrics").sqlalchemy_url


@pytest.fixture(scope="module")
def sqlite_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsApi]:
    with serve(tmp_path_factory.mktemp("metrics-sqlite") / "data") as api:
        yield api


@pytest.fixture(scope="module")
def postgres_metrics(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[MetricsApi]:
    url = fresh_database(postgres)
    with serve(tmp_path_factory.mktemp("metrics-postgres") / "data", catalog={"url": url}) as api:
        yield api


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def metrics_api(request: pytest.FixtureRequest) -> MetricsApi:
    return request.getfixturevalue(f"{request.param}_metrics")  # type: ignore[no-any-return]


# Expected values, computed by hand from PRODUCTS and the downloads above ------------------------------------------

PUBLISHED = {
    "AUX_POEORB.SENTINEL-1.A.size": 4000,
    "AUX_POEORB.SENTINEL-1.A.count": 2,
    "AUX_POEORB.SENTINEL-1.B.size": 500,
    "AUX_POEORB.SENTINEL-1.B.count": 1,
    "AUX_WND.SENTINEL-1._.size": 1500,
    "AUX_WND.SENTINEL-1._.count": 2,
    "AUX_CAL.SENTINEL-1.A.size": 200,
    "AUX_CAL.SENTINEL-1.A.count": 1,
}
DOWNLOADS = {
    "Download.AUX_POEORB.SENTINEL-1.A.alice.size": 2000,
    "Download.AUX_POEORB.SENTINEL-1.A.alice.completed": 2,
    "Download.AUX_POEORB.SENTINEL-1.A.alice.failed": 0,
    "Download.AUX_WND.SENTINEL-1._.alice.size": 700,
    "Download.AUX_WND.SENTINEL-1._.alice.completed": 1,
    "Download.AUX_WND.SENTINEL-1._.alice.failed": 0,
    "Download.AUX_POEORB.SENTINEL-1.B.bob.size": 500,
    "Download.AUX_POEORB.SENTINEL-1.B.bob.completed": 1,
    "Download.AUX_POEORB.SENTINEL-1.B.bob.failed": 0,
    "Download.AUX_POEORB.SENTINEL-1.A.bob.size": 0,
    "Download.AUX_POEORB.SENTINEL-1.A.bob.completed": 0,
    "Download.AUX_POEORB.SENTINEL-1.A.bob.failed": 1,
}
_DAILY = {"AUX_POEORB.SENTINEL-1.A": (100, 300, 200), "AUX_POEORB.SENTINEL-1.B": (60, 60, 60),
          "AUX_WND.SENTINEL-1._": (40, 40, 40)}  # fmt: skip
_MONTHLY = {**_DAILY, "AUX_WND.SENTINEL-1._": (40, 1000, 520)}
ORIGIN_TO_PUBLICATION = {
    f"OriginToPublication.{window}.{statistic}.time.{group}": f"{value:.3f}"
    for window, groups in (("Daily", _DAILY), ("Monthly", _MONTHLY))
    for group, values in groups.items()
    for statistic, value in zip(("min", "max", "avg"), values, strict=True)
}
SERVICE = {"Service.Products.value": "5", "Service.Volume.value": "6000"}
COUNTERS = {**PUBLISHED, **DOWNLOADS}
GAUGES = {**ORIGIN_TO_PUBLICATION, **SERVICE}
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def test_every_metric_has_its_exact_value(metrics_api: MetricsApi) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = metrics_api.get()
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == "$metadata#Metrics"
    metrics = {metric["Name"]: metric for metric in body["value"]}
    assert {name: m["Count"] for name, m in metrics.items() if m["MetricType"] == "Counter"} == COUNTERS
    assert {name: m["Gauge"] for name, m in metrics.items() if m["MetricType"] == "Gauge"} == GAUGES
    for metric in body["value"]:
        expected_keys = {"Name", "Timestamp", "MetricType", "Count" if metric["MetricType"] == "Counter" else "Gauge"}
        assert set(metric) == expected_keys, metric
        assert TIMESTAMP.fullmatch(metric["Timestamp"]), metric
        assert before <= datetime.fromisoformat(metric["Timestamp"]) <= after
    # Sorted by the key when no $orderby is given, so paging is stable.
    assert [m["Name"] for m in body["value"]] == sorted(metrics)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("startswith(Name,'Download.AUX_POEORB.SENTINEL-1.A.')", [n for n in DOWNLOADS if ".A." in n]),
        ("Name eq 'Service.Products.value'", ["Service.Products.value"]),
        ("MetricType eq OData.CSC.MetricType'Gauge'", list(GAUGES)),
        ("MetricType eq OData.CSC.MetricType'Counter' and startswith(Name,'AUX_')", list(PUBLISHED)),
        ("contains(Name,'.bob.')", [n for n in DOWNLOADS if ".bob." in n]),
        ("Name in ('AUX_WND.SENTINEL-1._.size','Service.Volume.value','No.Such.metric')",
         ["AUX_WND.SENTINEL-1._.size", "Service.Volume.value"]),
        ("Count gt 1000", ["AUX_POEORB.SENTINEL-1.A.size", "AUX_WND.SENTINEL-1._.size",
                           "Download.AUX_POEORB.SENTINEL-1.A.alice.size"]),
        ("startswith(Name,'OriginToPublication.Monthly.max.')",
         [n for n in ORIGIN_TO_PUBLICATION if n.startswith("OriginToPublication.Monthly.max.")]),
        ("Timestamp lt 2000-01-01T00:00:00.000Z", []),
        ("Timestamp gt 2000-01-01T00:00:00.000Z and endswith(Name,'.failed')",
         [n for n in DOWNLOADS if n.endswith(".failed")]),
    ],
)  # fmt: skip
def test_filter_selects_exactly(metrics_api: MetricsApi, query: str, expected: list[str]) -> None:
    assert sorted(metrics_api.values(**{"$filter": query})) == sorted(expected)


def test_orderby_paging_and_count(metrics_api: MetricsApi) -> None:
    everything = sorted([*COUNTERS, *GAUGES], reverse=True)
    response = metrics_api.get(**{"$orderby": "Name desc", "$top": "3", "$skip": "2", "$count": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.count"] == len(everything) == 40
    assert [m["Name"] for m in body["value"]] == everything[2:5]
    by_count = metrics_api.get(**{"$filter": "startswith(Name,'AUX_')", "$orderby": "Count desc,Name", "$top": "2"})
    assert [m["Name"] for m in by_count.json()["value"]] == ["AUX_POEORB.SENTINEL-1.A.size",
                                                             "AUX_WND.SENTINEL-1._.size"]  # fmt: skip
    # Every row has the same Timestamp: the key breaks the tie.
    by_time = metrics_api.get(**{"$orderby": "Timestamp desc", "$top": "1"})
    assert [m["Name"] for m in by_time.json()["value"]] == [min(everything)]


def test_select_limits_properties(metrics_api: MetricsApi) -> None:
    response = metrics_api.get(**{"$select": "Name,Count", "$filter": "Name eq 'AUX_CAL.SENTINEL-1.A.count'"})
    assert response.json() == {
        "@odata.context": "$metadata#Metrics(Name,Count)",
        "value": [{"Name": "AUX_CAL.SENTINEL-1.A.count", "Count": 1}],
    }


def test_admin_reads_metrics(metrics_api: MetricsApi) -> None:
    assert metrics_api.values(user=ADMIN, **{"$filter": "Name eq 'Service.Products.value'"}) == {
        "Service.Products.value": {
            "Name": "Service.Products.value",
            "Timestamp": ANY_TIMESTAMP,
            "MetricType": "Gauge",
            "Gauge": "5",
        }
    }


class _AnyTimestamp:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and TIMESTAMP.fullmatch(other) is not None

    __hash__ = None  # type: ignore[assignment]


ANY_TIMESTAMP = _AnyTimestamp()


def test_download_users_are_forbidden(metrics_api: MetricsApi) -> None:
    response = metrics_api.get(user=ALICE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"


def test_anonymous_callers_must_authenticate(metrics_api: MetricsApi) -> None:
    response = metrics_api.get(user=None)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"$filter": "Name eq"}, "$filter"),
        ({"$filter": "Gauge eq '5'"}, "Gauge"),
        ({"$filter": "MetricType eq OData.CSC.MetricType'Histogram'"}, "Histogram"),
        ({"$filter": "MetricType eq OData.CSC.SubscriptionStatus'running'"}, "MetricType"),
        ({"$orderby": "Gauge"}, "Gauge"),
        ({"$top": "-1"}, "$top"),
    ],
)
def test_bad_options_are_400_odata_errors(metrics_api: MetricsApi, params: dict[str, str], mentions: str) -> None:
    response = metrics_api.get(**params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert mentions in error["message"]

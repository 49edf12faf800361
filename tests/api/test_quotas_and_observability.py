"""Per-user quotas through the real app (429 with Retry-After), download records, and the Prometheus series."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from auxip.auth import Role
from auxip_testing.api_server import ApiServer, default_config, publish_content, run_api, sample_content
from auxip_testing.sample_products import sample_records

pytestmark = pytest.mark.integration

BIG = 64 << 20  # larger than the socket buffers: a client that stops reading keeps the transfer (and its slot) open
SMALL = 8000


def publish(server: ApiServer, index: int, size: int) -> str:
    record = list(sample_records(index + 1, seed=11))[index]
    return str(server.call(publish_content(server.engine, server.storage, record, sample_content(record, size))).id)


def _serve(data_dir: Path, quotas: dict[str, int]) -> Iterator[ApiServer]:
    with run_api(default_config(data_dir, quotas=quotas), notify_interval=None) as api:
        api.add_user("alice", "alice-password-1", Role.DOWNLOAD)
        api.add_user("bob", "bob-password-1", Role.DOWNLOAD)
        yield api


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    yield from _serve(tmp_path / "data", {"max_parallel_downloads": 1, "max_bytes_per_day": 3 * SMALL - 1})


@pytest.fixture
def volume_server(tmp_path: Path) -> Iterator[ApiServer]:
    # No parallel limit: the server frees a download's slot just after the client has the last byte, so under load
    # the next sequential request could still find the slot taken and be refused for the wrong reason.
    yield from _serve(tmp_path / "data", {"max_bytes_per_day": 3 * SMALL - 1})


def value_url(server: ApiServer, product_id: str) -> str:
    return f"{server.service_root}/Products({product_id})/$value"


def test_second_parallel_download_gets_429_with_retry_after(server: ApiServer) -> None:
    big = publish(server, 0, BIG)
    with requests.get(value_url(server, big), auth=("alice", "alice-password-1"), stream=True, timeout=30) as first:
        assert first.status_code == 200
        first.raw.read(1024)  # the transfer is under way and stalls: the slot stays taken
        second = requests.get(value_url(server, big), auth=("alice", "alice-password-1"), timeout=30)
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "TooManyRequests"
        assert int(second.headers["Retry-After"]) > 0
        # Quotas are per user: bob is not limited by alice's transfer.
        other = requests.head(value_url(server, big), auth=("bob", "bob-password-1"), timeout=30)
        assert other.status_code == 200


def test_volume_quota_refuses_once_the_window_is_used_up(volume_server: ApiServer) -> None:
    server = volume_server
    small = publish(server, 1, SMALL)
    auth = ("alice", "alice-password-1")
    for _ in range(3):  # 3 x 8000 bytes reaches the 23,999-byte daily volume (the last one may go over)
        assert requests.get(value_url(server, small), auth=auth, timeout=30).status_code == 200
    refused = requests.get(value_url(server, small), auth=auth, timeout=30)
    assert refused.status_code == 429
    # The oldest download leaves the 24 h window first: Retry-After is close to a day.
    assert 86_000 < int(refused.headers["Retry-After"]) <= 86_400
    # HEAD moves no bytes and is never refused for volume.
    assert requests.head(value_url(server, small), auth=auth, timeout=30).status_code == 200


def test_prometheus_series_count_requests_and_bytes(server: ApiServer) -> None:
    small = publish(server, 2, SMALL)
    auth = ("bob", "bob-password-1")
    for _ in range(2):
        assert requests.get(value_url(server, small), auth=auth, timeout=30).status_code == 200
    assert requests.get(f"{server.service_root}/Products", params={"$top": "1"}, auth=auth, timeout=30).ok
    bad = requests.get(f"{server.service_root}/Products", params={"$filter": "bad eq"}, auth=auth, timeout=30)
    assert bad.status_code == 400
    time.sleep(0.2)  # the download record and counters are updated right after the last byte
    text = requests.get(f"{server.base_url}/metrics", timeout=10).text

    def sample(pattern: str) -> float:
        match = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        assert match, f"no sample for {pattern}:\n{text}"
        return float(match.group(1))

    assert sample(r"auxip_downloaded_bytes_total") == 2 * SMALL
    assert sample(r'auxip_downloads_total\{status="completed"\}') == 2
    route = re.escape("/odata/v1/Products({key})/$value")
    assert sample(rf'auxip_http_request_duration_seconds_count\{{method="GET",route="{route}",status="200"\}}') == 2
    assert (
        sample(r'auxip_http_request_duration_seconds_count\{method="GET",route="/odata/v1/Products",status="400"\}')
        == 1
    )


def test_download_records_are_kept_per_user(server: ApiServer) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from auxip.auth.models import DownloadRecord

    small = publish(server, 3, SMALL)
    assert requests.get(value_url(server, small), auth=("bob", "bob-password-1"), timeout=30).ok
    time.sleep(0.2)
    with Session(server.engine) as session:
        rows = session.execute(select(DownloadRecord.username, DownloadRecord.bytes, DownloadRecord.status)).all()
    assert [tuple(row) for row in rows] == [("bob", SMALL, "completed")]

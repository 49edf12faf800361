"""A poller paging with `PublicationDate gt <last seen>` while products are being published sees each exactly once.

The publisher is a thread calling `publish_product` on the engine (as ingestion does), 300 times, while the poller
loops with `$orderby=PublicationDate asc&$top=50`, echoing the last PublicationDate it received as the next bound,
exactly as the S1 ingestor and prosEO monitor do.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from auxip.auth import Role
from auxip.catalog.bulk import bulk_load
from auxip.catalog.publish import publish_product
from auxip_testing.sample_products import sample_records

pytestmark = pytest.mark.integration

PUBLISHED_WHILE_POLLING = 300


def _poll_until(server, http: requests.Session, total: int, deadline: float) -> list[dict]:
    seen: list[dict] = []
    last = "2000-01-01T00:00:00.000Z"
    # Stop on distinct products (a duplicate delivery must not end the loop early) or at the deadline.
    while len({item["Id"] for item in seen}) < total and time.monotonic() < deadline:
        url = f"{server.service_root}/Products?$filter=PublicationDate gt {last}&$orderby=PublicationDate asc&$top=50"
        response = http.get(url, timeout=30)
        assert response.status_code == 200, response.text
        page = response.json()["value"]
        if page:
            seen += page
            last = page[-1]["PublicationDate"]
        else:
            time.sleep(0.01)
    return seen


def test_poller_sees_every_product_once_in_order_while_publishing(tmp_path, api_tools) -> None:
    with api_tools.serve(api_tools.default_config(tmp_path / "data"), notify_interval=None) as server:
        server.add_user("poller", "poller-password-1", Role.DOWNLOAD)
        http = requests.Session()
        http.auth = ("poller", "poller-password-1")
        records = list(sample_records(PUBLISHED_WHILE_POLLING, seed=7))
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                for record in records:
                    publish_product(server.engine, record)
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)

        publisher = threading.Thread(target=publish, name="publisher")
        publisher.start()
        seen = _poll_until(server, http, len(records), time.monotonic() + 60)
        publisher.join(60)
        assert not errors
        names = [item["Name"] for item in seen]
        first_sightings = list(dict.fromkeys(names))
        # None missed, and in the publisher's order (PublicationDate order is commit order).
        assert first_sightings == [r.name for r in records]
        dates = [item["PublicationDate"] for item in seen]
        assert dates == sorted(dates)
        # Exactly once: dates are whole milliseconds, so each rendered value is exact and `gt` never re-matches.
        assert len(names) == len(first_sightings)


def test_poller_advances_through_products_published_in_the_same_millisecond(tmp_path, api_tools) -> None:
    with api_tools.serve(api_tools.default_config(tmp_path / "data"), notify_interval=None) as server:
        server.add_user("poller", "poller-password-1", Role.DOWNLOAD)
        http = requests.Session()
        http.auth = ("poller", "poller-password-1")
        records = list(sample_records(120, seed=3, start=datetime(2022, 1, 1, tzinfo=UTC) - timedelta(days=1)))
        assert bulk_load(server.engine, records).inserted == 120
        seen = _poll_until(server, http, len(records), time.monotonic() + 10)
        names = [item["Name"] for item in seen]
        assert len(names) == len(set(names)) == len(records)

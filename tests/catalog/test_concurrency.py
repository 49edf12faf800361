"""Concurrent publishers: PublicationDate follows commit order, so a poller using `gt <last seen>` misses nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine, select

from auxip.catalog import ProductRecord, publish_product
from auxip.catalog.clock import EPOCH
from auxip.catalog.models import Product

RecordFactory = Callable[..., ProductRecord]
THREADS = 4


@pytest.mark.slow
def test_concurrent_publishers_never_hide_a_product_from_a_poller(engine: Engine, make_record: RecordFactory) -> None:
    per_thread = 50 if engine.dialect.name == "postgresql" else 25
    published: dict[int, list[tuple[uuid.UUID, datetime]]] = {thread: [] for thread in range(THREADS)}
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[tuple[datetime, uuid.UUID]] = []

    def publisher(thread: int) -> None:
        try:
            for step in range(per_thread):
                result = publish_product(engine, make_record(thread * 1000 + step))
                published[thread].append((result.id, result.publication_date))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def poll_once(last: datetime) -> datetime:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Product.publication_date, Product.id)
                .where(Product.publication_date > last)
                .order_by(Product.publication_date, Product.id)
                .limit(1000)
            ).all()
        seen.extend((row[0], row[1]) for row in rows)
        return rows[-1][0] if rows else last

    def poller() -> None:
        # Exactly what a downloader does: remember the last PublicationDate, ask for anything later.
        try:
            last = EPOCH
            while not done.is_set():
                last = poll_once(last)
            poll_once(last)  # everything is committed now: the final poll must complete the picture
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(index,)) for index in range(THREADS)]
    polling = threading.Thread(target=poller)
    polling.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    done.set()
    polling.join(60)
    assert errors == []

    all_published = [item for items in published.values() for item in items]
    assert len(all_published) == THREADS * per_thread
    # Each thread committed its products one after the other, so its dates must strictly increase.
    for items in published.values():
        dates = [date for _, date in items]
        assert dates == sorted(dates)
        assert len(set(dates)) == len(dates)
    # No duplicate dates at all, and the database agrees with what publish_product returned.
    assert len({date for _, date in all_published}) == len(all_published)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Product.id, Product.publication_date)).tuples().all())
    assert stored == dict(all_published)
    # The poller never saw a product twice and never missed one: nothing was committed "behind" its cursor.
    assert len(seen) == len(set(seen))
    assert {product_id for _, product_id in seen} == set(stored)
    assert [date for date, _ in seen] == sorted(date for date, _ in seen)

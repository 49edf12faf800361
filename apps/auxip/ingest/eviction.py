"""Eviction: products past their EvictionDate leave the catalog's online set and storage, with an audit record.

The catalog row is marked first (the API answers 404 from that commit on), then the object is deleted. A crash in
between leaves an orphan object; each run therefore also deletes again the objects of recently evicted products
(deleting an absent object is not an error), so the orphan lives at most one interval.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from auxip.catalog.models import Product
from auxip.ingest.quarantine import audit
from auxip.ingest.state import utcnow
from auxip.storage import Storage

log = logging.getLogger("auxip.ingest.eviction")


async def evict_expired(
    engine: Engine, storage: Storage, now: datetime | None = None, batch: int = 1000, recheck: timedelta | None = None
) -> list[str]:
    """Evict every product whose EvictionDate has passed; returns their names."""
    now = now or utcnow()
    evicted: list[str] = []
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(Product.id, Product.name, Product.storage_key)
                .where(Product.eviction_date <= now, Product.evicted_at.is_(None))
                .order_by(Product.eviction_date)
                .limit(batch)
            ).all()
            if not rows:
                break
            conn.execute(update(Product).where(Product.id.in_([row.id for row in rows])).values(evicted_at=now))
            for row in rows:
                audit(conn, "eviction", "product.evict", row.name, {"id": str(row.id), "storage_key": row.storage_key})
        for row in rows:
            await storage.delete(row.storage_key)
            evicted.append(row.name)
    if recheck is not None:
        with engine.connect() as conn:
            keys = conn.execute(select(Product.storage_key).where(Product.evicted_at >= now - recheck)).scalars().all()
        for key in keys:
            await storage.delete(key)
    if evicted:
        log.info("evicted", extra={"count": len(evicted)})
    return evicted

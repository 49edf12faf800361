"""`GET /odata/v1/Metrics`: the ICD monitoring metrics, computed at request time (see `auxip.metrics`).

Reporting and Admin only: metrics name every client and what it downloaded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from auxip.api.db import in_session
from auxip.api.envelope import collection
from auxip.api.settings import API_SETTINGS
from auxip.auth import Role, require
from auxip.metrics import TtlCache, metric_json, metrics_entity
from auxip.odata import parse_query_options

ROOT = "/odata/v1"
READERS = (Role.REPORTING, Role.ADMIN)
#: How long an identical query is answered from memory (see `auxip.metrics.cache`).
CACHE_SECONDS: Final = 5.0
METRICS_CACHE = web.AppKey("metrics_cache", TtlCache)


def add_metrics_routes(app: web.Application, cache_seconds: float = CACHE_SECONDS) -> None:
    app[METRICS_CACHE] = TtlCache(cache_seconds)
    app.router.add_get(f"{ROOT}/Metrics", list_metrics)


async def list_metrics(request: web.Request) -> web.Response:
    await require(request, *READERS)
    cache = request.app[METRICS_CACHE]
    cached = cache.get(request.path_qs)
    if cached is not None:
        return web.json_response(cached)
    # Milliseconds, as rendered: a client can filter on the Timestamp it was given.
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    settings = request.config_dict[API_SETTINGS]
    options = parse_query_options(request.query, metrics_entity(now), page_cap=settings.max_page_size)
    rows = options.entity.table
    conditions = [options.where] if options.where is not None else []
    page = select(rows).where(*conditions).order_by(*options.order_clauses()).offset(options.skip).limit(options.limit)
    count_select = select(func.count()).select_from(rows).where(*conditions) if options.count else None

    def read(session: Session) -> tuple[list[Row[Any]], int | None]:
        metrics = list(session.execute(page))
        return metrics, (session.scalar(count_select) if count_select is not None else None)

    metrics, count = await in_session(request.app, read)
    body = collection(request, "Metrics", options, [metric_json(row, now, options.select) for row in metrics], count)
    cache.put(request.path_qs, body)
    return web.json_response(body)

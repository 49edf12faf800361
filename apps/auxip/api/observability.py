"""Health endpoints, Prometheus metrics and JSON access logs."""

from __future__ import annotations

import json
import logging
import time
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import text

from auxip.api.db import in_session
from auxip.api.errors import Handler

access_log = logging.getLogger("auxip.access")

METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
REQUEST_SECONDS = web.AppKey("request_seconds", Histogram)
DOWNLOADED_BYTES = web.AppKey("downloaded_bytes", Counter)
DOWNLOADS = web.AppKey("downloads", Counter)
PROCESS_ROLES_GAUGE = web.AppKey("process_roles", Gauge)

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


def add_observability(app: web.Application) -> None:
    registry = CollectorRegistry()
    app[METRICS_REGISTRY] = registry
    app[REQUEST_SECONDS] = Histogram(
        "auxip_http_request_duration_seconds",
        "API request latency by route and status",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    app[DOWNLOADED_BYTES] = Counter(
        "auxip_downloaded_bytes", "Product bytes sent by $value downloads", registry=registry
    )
    app[DOWNLOADS] = Counter(
        "auxip_downloads", "$value transfers by outcome (completed or failed)", ["status"], registry=registry
    )
    app[PROCESS_ROLES_GAUGE] = Gauge(
        "auxip_process_info", "What this process runs (its `roles`, comma-separated)", ["roles"], registry=registry
    )
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics)


def _route(request: web.Request) -> str:
    # The route pattern, not the path: one series per endpoint whatever the product Id.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        request.app[REQUEST_SECONDS].labels(request.method, _route(request), str(status)).observe(elapsed)
        access_log.info(
            json.dumps(
                {
                    "event": "request",
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "remote": request.remote,
                }
            )
        )


async def live(_request: web.Request) -> web.Response:
    return web.json_response({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    try:
        await in_session(request.app, lambda session: session.execute(text("SELECT 1")).scalar_one())
    except Exception as exc:
        return web.json_response({"status": "not ready", "reason": f"catalog unreachable: {exc}"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

"""The API application: configuration in, a ready aiohttp app out (`build_app`)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from sqlalchemy import Engine

from auxip.api.db import ENGINE
from auxip.api.download import DOWNLOAD_GUARD, STORAGE, add_download_routes
from auxip.api.errors import Handler, odata_errors
from auxip.api.guard import QUOTAS, download_guard
from auxip.api.metrics_entity import add_metrics_routes
from auxip.api.observability import PROCESS_ROLES_GAUGE, add_observability, measured
from auxip.api.products import add_product_routes
from auxip.api.service import ROOT, add_service_routes
from auxip.api.settings import API_SETTINGS
from auxip.api.subscriptions import PRINCIPAL_RESOLVER, add_subscription_routes
from auxip.auth import (
    AUTHENTICATOR,
    Authenticator,
    IssuerSettings,
    LocalIdentityStore,
    LocalTokenSettings,
    QuotaLimits,
    Quotas,
    QuotaSettings,
    Role,
    TokenValidator,
    Validators,
    authenticate,
    require,
)
from auxip.auth.keys import load_or_create
from auxip.auth.token_endpoint import LocalIssuer, add_token_routes
from auxip.auth.token_proxy import add_token_proxy_route
from auxip.auth.validation import StaticJwks
from auxip.config import AuxipConfig
from auxip.ingest.bus import open_bus
from auxip.ingest.service import IngestService
from auxip.storage import Storage
from auxip.subscriptions.service import SubscriptionService


@dataclass(frozen=True)
class Services:
    """What the app runs on; built by the caller so tests and `auxip serve` share one assembly."""

    engine: Engine
    storage: Storage
    store: LocalIdentityStore | None = None


#: Paths anyone may call: the service root, $metadata (clients load it before they log in) and the token endpoint.
PUBLIC_PATHS = frozenset({f"{ROOT}/", ROOT, f"{ROOT}/$metadata"})


@web.middleware
async def authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Before any lookup: an anonymous caller must not learn which product Ids exist.
    if request.path.startswith(ROOT) and request.path not in PUBLIC_PATHS:
        await authenticate(request)
    return await handler(request)


async def subscription_caller(request: web.Request) -> tuple[str, bool]:
    """Download users manage their own subscriptions; Reporting and Admin see everyone's."""
    principal = await require(request, Role.DOWNLOAD, Role.REPORTING, Role.ADMIN)
    return principal.username, principal.has_any(Role.REPORTING, Role.ADMIN)


def build_process(config: AuxipConfig, services: Services) -> web.Application:
    """One `auxip serve` process: the web application of its roles (`config.roles`) with their background work.

    Without `api` it serves only `/health/*` and `/metrics`. Processes of any roles share the catalog, the object
    store and the bus: claims and leases in the catalog share the work between them.
    """
    roles = set(config.roles)
    app = build_app(config, services) if "api" in roles else build_health_app(services.engine)
    if "notify" in roles:
        run_subscription_worker(app, interval=2.0)
    if roles & {"ingest", "route", "evict"}:
        bus = open_bus(config.bus, services.engine)
        run_ingestion(app, IngestService(config, services.engine, services.storage, bus))
    app[PROCESS_ROLES_GAUGE].labels(",".join(config.roles)).set(1)
    return app


def build_health_app(engine: Engine) -> web.Application:
    """The web side of a process without the API role: liveness, readiness (the catalog answers) and metrics."""
    app = web.Application(middlewares=[measured])
    app[ENGINE] = engine
    add_observability(app)
    return app


def run_subscription_worker(app: web.Application, interval: float) -> None:
    """Match and notify in the background for the app's lifetime (one process group locally)."""

    async def worker(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        async with SubscriptionService(app[ENGINE]) as service:
            task = asyncio.create_task(service.run_forever(stop, interval=interval))
            yield
            stop.set()
            await task

    app.cleanup_ctx.append(worker)


def run_ingestion(app: web.Application, service: IngestService) -> None:
    """Run the ingestion pipeline in the background for the app's lifetime (one process group locally)."""

    async def pipeline(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        yield
        stop.set()
        await task
        await service.close()

    app.cleanup_ctx.append(pipeline)


def _local_issuer(config: AuxipConfig, store: LocalIdentityStore) -> LocalIssuer:
    clients = {name: os.environ.get(variable, "") if variable else "" for name, variable in
               config.auth.token_clients.items()}  # fmt: skip
    settings = LocalTokenSettings(
        data_dir=config.data_dir / "auth",
        clients=clients,
        token_lifetime_seconds=config.auth.token_lifetime_seconds,
    )
    return LocalIssuer(settings, load_or_create(settings.data_dir), store)


def _validators(config: AuxipConfig, local: LocalIssuer | None) -> Validators:
    validators = [
        TokenValidator(IssuerSettings(issuer=k.issuer, jwks_url=k.jwks_url, audience=k.audience, client_id=k.client_id))
        for k in config.auth.keycloak
    ]
    if local is not None:
        settings = IssuerSettings(
            issuer=local.settings.issuer, jwks_url="", source="local", audience=local.settings.audience
        )
        validators.append(TokenValidator(settings, StaticJwks(local.key.jwks())))
    return Validators(validators)


async def _freeze_startup_objects(_app: web.Application) -> None:
    # Everything allocated so far (modules, SQLAlchemy and aiohttp internals) lives as long as the process. Freezing
    # it keeps the cyclic GC from rescanning it on every full collection: measured on a 1000-product page, p95
    # latency fell from 67 ms to 33 ms (the p50 stays at 33 ms).
    gc.freeze()


def build_app(config: AuxipConfig, services: Services) -> web.Application:
    app = web.Application(middlewares=[measured, odata_errors, authenticated])
    app.on_startup.append(_freeze_startup_objects)
    app[API_SETTINGS] = config.api
    app[ENGINE] = services.engine
    app[STORAGE] = services.storage
    store = services.store if config.auth.local_users else None
    local = _local_issuer(config, store) if store is not None else None
    app[AUTHENTICATOR] = Authenticator(store, _validators(config, local))
    quota_limits = QuotaLimits(
        max_parallel_downloads=config.quotas.max_parallel_downloads,
        max_bytes_per_window=config.quotas.max_bytes_per_day,
        window=timedelta(days=1),
    )
    app[QUOTAS] = Quotas(QuotaSettings(default=quota_limits), services.engine)
    app[DOWNLOAD_GUARD] = download_guard
    if config.auth.token_proxy_url:
        add_token_proxy_route(app, config.auth.token_proxy_url)
    elif local is not None:
        add_token_routes(app, local)
    add_service_routes(app)
    add_product_routes(app)
    add_download_routes(app)
    app[PRINCIPAL_RESOLVER] = subscription_caller
    add_subscription_routes(app)
    add_metrics_routes(app)
    add_observability(app)
    return app

"""Auth fixtures: a migrated SQLite database, a fast argon2 profile, the embedded issuer and a tiny aiohttp app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import argon2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine

from auxip.api.errors import odata_errors
from auxip.auth import (
    AUTHENTICATOR,
    Authenticator,
    IssuerSettings,
    LocalIdentityStore,
    LocalTokenSettings,
    Quotas,
    Role,
    TokenValidator,
    Validators,
    require,
)
from auxip.auth.keys import SigningKey, load_or_create
from auxip.auth.passwords import Passwords
from auxip.auth.token_endpoint import LocalIssuer, add_token_routes
from auxip.auth.validation import StaticJwks
from auxip.catalog.migrate import make_engine, upgrade

QUOTAS = web.AppKey("quotas", Quotas)
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'auxip.db'}"
    upgrade(url)
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def passwords() -> Passwords:
    # argon2id with a tiny cost: the tests exercise behaviour, not the production cost profile.
    return Passwords(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def store(engine: Engine, passwords: Passwords) -> LocalIdentityStore:
    return LocalIdentityStore(engine, passwords)


@pytest.fixture
def local_settings(tmp_path: Path) -> LocalTokenSettings:
    return LocalTokenSettings(data_dir=tmp_path / "auth-data")


@pytest.fixture
def signing_key(local_settings: LocalTokenSettings) -> SigningKey:
    return load_or_create(local_settings.data_dir)


@pytest.fixture
def local_validator(local_settings: LocalTokenSettings, signing_key: SigningKey) -> TokenValidator:
    settings = IssuerSettings(
        issuer=local_settings.issuer, jwks_url="", source="local", audience=local_settings.audience
    )
    return TokenValidator(settings, StaticJwks(signing_key.jwks()))


async def _whoami(request: web.Request, *roles: Role) -> web.Response:
    principal = await require(request, *roles)
    roles_out = sorted(role.value for role in principal.roles)
    return web.json_response({"username": principal.username, "roles": roles_out, "source": principal.source})


async def products(request: web.Request) -> web.Response:
    return await _whoami(request, Role.DOWNLOAD)


async def metrics(request: web.Request) -> web.Response:
    return await _whoami(request, Role.REPORTING)


async def download(request: web.Request) -> web.Response:
    principal = await require(request, Role.DOWNLOAD)
    async with request.app[QUOTAS].download_slot(principal):
        return web.Response(body=b"payload")


def build_app(
    store: LocalIdentityStore | None,
    validators: list[TokenValidator],
    issuer: LocalIssuer | None = None,
    quotas: Quotas | None = None,
) -> web.Application:
    app = web.Application(middlewares=[odata_errors])
    app[AUTHENTICATOR] = Authenticator(store, Validators(validators))
    if quotas is not None:
        app[QUOTAS] = quotas
    app.router.add_get("/Products", products)
    app.router.add_get("/Metrics", metrics)
    app.router.add_get("/download", download)
    if issuer is not None:
        add_token_routes(app, issuer)
    return app


@pytest.fixture
def local_issuer(local_settings: LocalTokenSettings, signing_key: SigningKey, store: LocalIdentityStore) -> LocalIssuer:
    return LocalIssuer(local_settings, signing_key, store)


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory,
    store: LocalIdentityStore,
    local_validator: TokenValidator,
    local_issuer: LocalIssuer,
) -> TestClient[web.Request, web.Application]:
    """The embedded setup: local users over Basic, local tokens over Bearer, the token endpoint under /auth."""
    return await aiohttp_client(build_app(store, [local_validator], local_issuer))

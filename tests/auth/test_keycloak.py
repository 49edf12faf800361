"""Against a real Keycloak (realm `auxip`): its tokens are accepted with mapped roles, forgeries are refused."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from auxip.auth import IssuerSettings, LocalTokenSettings, Principal, Role, TokenValidator
from auxip.auth.keys import SigningKey
from auxip.auth.tokens import issue_token
from auxip_testing.keycloak import KeycloakServer

from .conftest import ClientFactory, build_app

pytestmark = pytest.mark.integration
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def keycloak_client(aiohttp_client: ClientFactory, keycloak: KeycloakServer) -> Client:
    """Production setup: no local users, Bearer tokens from Keycloak only."""
    settings = IssuerSettings(issuer=keycloak.issuer, jwks_url=keycloak.jwks_url, audience=keycloak.client_id)
    return await aiohttp_client(build_app(None, [TokenValidator(settings)]))


async def test_keycloak_token_is_accepted_with_download_role(keycloak_client: Client, keycloak: KeycloakServer) -> None:
    token = keycloak.access_token()
    response = await keycloak_client.get("/Products", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert await response.json() == {"username": keycloak.username, "roles": ["Download"], "source": "keycloak"}
    legacy = await keycloak_client.get("/Products", headers={"OAUTH2-ACCESS-TOKEN": token})
    assert legacy.status == 200
    forbidden = await keycloak_client.get("/Metrics", headers={"Authorization": f"Bearer {token}"})
    assert forbidden.status == 403


async def test_keycloak_user_without_roles_is_403(keycloak_client: Client, keycloak: KeycloakServer) -> None:
    username, password = f"noroles-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    keycloak.create_user(username, password)
    token = keycloak.access_token(username, password)
    response = await keycloak_client.get("/Products", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "Forbidden"


async def test_keycloak_user_with_two_roles(keycloak: KeycloakServer) -> None:
    username, password = f"ops-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    keycloak.create_user(username, password, realm_roles=("Reporting", "Admin"))
    settings = IssuerSettings(issuer=keycloak.issuer, jwks_url=keycloak.jwks_url)
    validator = TokenValidator(settings)
    principal = await asyncio.to_thread(validator.validate, keycloak.access_token(username, password))
    assert principal == Principal(username, frozenset({Role.REPORTING, Role.ADMIN}), "keycloak")


async def test_local_key_claiming_keycloak_issuer_is_401(
    keycloak_client: Client, keycloak: KeycloakServer, signing_key: SigningKey, local_settings: LocalTokenSettings
) -> None:
    forged_settings = LocalTokenSettings(data_dir=local_settings.data_dir, issuer=keycloak.issuer)
    principal = Principal(keycloak.username, frozenset({Role.ADMIN}), "keycloak")
    forged = issue_token(signing_key, forged_settings, principal, keycloak.client_id)
    response = await keycloak_client.get("/Products", headers={"Authorization": f"Bearer {forged}"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="AUXIP", Bearer'


async def test_keycloak_token_for_another_audience_is_401(
    aiohttp_client: ClientFactory, keycloak: KeycloakServer
) -> None:
    settings = IssuerSettings(issuer=keycloak.issuer, jwks_url=keycloak.jwks_url, audience="some-other-api")
    client = await aiohttp_client(build_app(None, [TokenValidator(settings)]))
    response = await client.get("/Products", headers={"Authorization": f"Bearer {keycloak.access_token()}"})
    assert response.status == 401

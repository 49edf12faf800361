"""`authenticate`/`require` over HTTP: Basic, Bearer, the legacy header, 401 challenges and 403 for missing roles."""

from __future__ import annotations

import base64
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from auxip.auth import IssuerSettings, LocalIdentityStore, LocalTokenSettings, Principal, Role, RoleMapping
from auxip.auth.keys import SigningKey
from auxip.auth.tokens import issue_token
from auxip.auth.validation import StaticJwks, TokenValidator

from .conftest import ClientFactory, build_app

PASSWORD = "correct horse battery staple"  # noqa: S105 - test data
CHALLENGE = 'Basic realm="AUXIP", Bearer'
Client = TestClient[web.Request, web.Application]


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


async def test_basic_auth(client: Client, store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    response = await client.get("/Products", headers=basic("alice", PASSWORD))
    assert response.status == 200
    assert await response.json() == {"username": "alice", "roles": ["Download"], "source": "local"}


async def test_legacy_header(
    client: Client, store: LocalIdentityStore, signing_key: SigningKey, local_settings: LocalTokenSettings
) -> None:
    token = issue_token(
        signing_key, local_settings, Principal("bob", frozenset({Role.REPORTING}), "local"), "auxip-api"
    )
    response = await client.get("/Metrics", headers={"OAUTH2-ACCESS-TOKEN": token})
    assert response.status == 200
    assert await response.json() == {"username": "bob", "roles": ["Reporting"], "source": "local"}
    refused = await client.get("/Metrics", headers={"OAUTH2-ACCESS-TOKEN": token[:-4] + "AAAA"})
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("alice", "wrong password"),
        basic("nobody", PASSWORD),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer"},
        {"Authorization": "Digest username=alice"},
    ],
    ids=["none", "wrong-password", "unknown-user", "bad-base64", "no-colon", "garbage-jwt", "empty-bearer", "digest"],
)
async def test_401_with_challenge(client: Client, store: LocalIdentityStore, headers: dict[str, str]) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    response = await client.get("/Products", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    body = await response.json()
    assert body["error"]["code"] == "Unauthorized"
    assert body["error"]["message"]


async def test_403_for_missing_role(client: Client, store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    response = await client.get("/Metrics", headers=basic("alice", PASSWORD))
    assert response.status == 403
    assert "WWW-Authenticate" not in response.headers
    assert await response.json() == {"error": {"code": "Forbidden", "message": "this operation needs role Reporting"}}


async def test_disabled_user_over_basic_is_401(client: Client, store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    assert (await client.get("/Products", headers=basic("alice", PASSWORD))).status == 200
    store.set_disabled("alice", True)
    assert (await client.get("/Products", headers=basic("alice", PASSWORD))).status == 401


async def test_basic_refused_without_local_store(
    aiohttp_client: ClientFactory, local_validator: TokenValidator
) -> None:
    client = await aiohttp_client(build_app(None, [local_validator]))
    response = await client.get("/Products", headers=basic("alice", PASSWORD))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_role_mapping_realm_and_client_roles(signing_key: SigningKey) -> None:
    import jwt

    mapping = RoleMapping({"auxip-download": Role.DOWNLOAD, "REPORTING": Role.REPORTING, "ops": Role.ADMIN})
    settings = IssuerSettings(issuer="https://idp/realms/auxip", jwks_url="", role_mapping=mapping)
    validator = TokenValidator(settings, StaticJwks(signing_key.jwks()))
    claims = {
        "iss": "https://idp/realms/auxip",
        "aud": ["account", "auxip-api"],
        "sub": "f5a1",
        "preferred_username": "carol",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "realm_access": {"roles": ["default-roles-auxip", "Auxip-Download", "offline_access"]},
        "resource_access": {"auxip-api": {"roles": ["reporting"]}, "other-client": {"roles": ["ops"]}},
    }
    token = jwt.encode(claims, signing_key.private_key, algorithm="RS256", headers={"kid": signing_key.kid})
    assert validator.validate(token) == Principal("carol", frozenset({Role.DOWNLOAD, Role.REPORTING}), "keycloak")

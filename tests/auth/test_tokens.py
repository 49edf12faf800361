"""The embedded token endpoint: password grant, RFC 6749 errors, the signing key and its JWKS, token validation."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from auxip.auth import IssuerSettings, LocalIdentityStore, LocalTokenSettings, Principal, Role, TokenValidator
from auxip.auth.keys import KEY_FILE, SigningKey, load_or_create
from auxip.auth.token_endpoint import LocalIssuer
from auxip.auth.tokens import issue_token
from auxip.auth.validation import InvalidTokenError, RemoteJwks, StaticJwks

from .conftest import ClientFactory, build_app

PASSWORD = "correct horse battery staple"  # noqa: S105 - test data
WRONG = "wrong password"
OMIT = "<omit>"
SECRET = "s3cret-value"  # noqa: S105 - test data
Client = TestClient[web.Request, web.Application]
ALICE = Principal("alice", frozenset({Role.DOWNLOAD}), "local")


def _form(**overrides: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD, "client_id": "auxip-api"}
    form.update(overrides)
    return {name: value for name, value in form.items() if value != OMIT}


async def test_password_grant_round_trip(
    client: Client, store: LocalIdentityStore, local_validator: TokenValidator
) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    response = await client.post("/auth/token", data=_form(scope="openid"))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"  # noqa: S105 - the token type, not a secret
    assert body["expires_in"] == 300
    assert local_validator.validate(body["access_token"]) == ALICE
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300
    assert claims["aud"] == "auxip-api"
    assert claims["realm_access"] == {"roles": ["Download"]}

    products = await client.get("/Products", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert products.status == 200
    assert await products.json() == {"username": "alice", "roles": ["Download"], "source": "local"}


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (_form(grant_type="client_credentials"), 400, "unsupported_grant_type"),
        (_form(grant_type=OMIT), 400, "invalid_request"),
        (_form(password=WRONG), 400, "invalid_grant"),
        (_form(username="nobody"), 400, "invalid_grant"),
        (_form(password=OMIT), 400, "invalid_request"),
        (_form(client_id="someone-else"), 401, "invalid_client"),
    ],
)
async def test_token_endpoint_errors(
    client: Client, store: LocalIdentityStore, form: dict[str, str], status: int, error: str
) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    response = await client.post("/auth/token", data=form)
    assert response.status == status
    body = await response.json()
    assert body["error"] == error
    assert "access_token" not in body


async def test_disabled_user_gets_no_token(client: Client, store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD], disabled=True)
    response = await client.post("/auth/token", data=_form())
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_grant"


async def test_client_secret_is_checked_when_configured(
    aiohttp_client: ClientFactory, store: LocalIdentityStore, local_validator: TokenValidator, local_issuer: LocalIssuer
) -> None:
    issuer = replace(local_issuer, settings=replace(local_issuer.settings, clients={"auxip-api": SECRET}))
    client = await aiohttp_client(build_app(store, [local_validator], issuer))
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    refused = await client.post("/auth/token", data=_form(client_secret=WRONG))
    assert refused.status == 401
    assert (await refused.json())["error"] == "invalid_client"
    accepted = await client.post("/auth/token", data=_form(client_secret=SECRET))
    assert accepted.status == 200


def test_expired_token_is_refused(
    signing_key: SigningKey, local_settings: LocalTokenSettings, local_validator: TokenValidator
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    token = issue_token(signing_key, local_settings, ALICE, "auxip-api", now=past, lifetime_seconds=300)
    with pytest.raises(InvalidTokenError, match="expired"):
        local_validator.validate(token)
    # Within the 30 s leeway, an expiry is tolerated (clock skew between hosts).
    recent = datetime.now(UTC) - timedelta(seconds=310)
    token = issue_token(signing_key, local_settings, ALICE, "auxip-api", now=recent, lifetime_seconds=300)
    assert local_validator.validate(token) == ALICE


def test_tampered_token_is_refused(
    signing_key: SigningKey, local_settings: LocalTokenSettings, local_validator: TokenValidator
) -> None:
    token = issue_token(signing_key, local_settings, ALICE, "auxip-api")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"]["roles"] = ["Admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidTokenError, match="Signature verification failed"):
        local_validator.validate(f"{header}.{forged}.{signature}")


def test_wrong_audience_and_issuer_are_refused(
    signing_key: SigningKey, local_settings: LocalTokenSettings, local_validator: TokenValidator
) -> None:
    other_audience = issue_token(signing_key, replace(local_settings, audience="other-api"), ALICE, "auxip-api")
    with pytest.raises(InvalidTokenError, match=r"(?i)audience"):
        local_validator.validate(other_audience)
    other_issuer = issue_token(signing_key, replace(local_settings, issuer="urn:someone"), ALICE, "auxip-api")
    with pytest.raises(InvalidTokenError, match=r"(?i)issuer"):
        local_validator.validate(other_issuer)


def test_hs256_and_none_algorithms_are_refused(signing_key: SigningKey, local_validator: TokenValidator) -> None:
    claims = {"iss": "urn:auxip:local", "aud": "auxip-api", "sub": "alice", "iat": 0, "exp": 2**40}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": signing_key.kid})
    with pytest.raises(InvalidTokenError):
        local_validator.validate(unsigned)
    hmac_key = b"x" * 32
    hs256 = jwt.encode(claims, hmac_key, algorithm="HS256", headers={"kid": signing_key.kid})
    with pytest.raises(InvalidTokenError):
        local_validator.validate(hs256)


def test_key_is_created_0600_and_reloaded(local_settings: LocalTokenSettings, signing_key: SigningKey) -> None:
    path = local_settings.data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create(local_settings.data_dir)
    assert again.kid == signing_key.kid
    path.chmod(0o644)
    with pytest.raises(PermissionError):
        load_or_create(local_settings.data_dir)


def test_other_local_key_is_refused(
    tmp_path: Path, local_settings: LocalTokenSettings, local_validator: TokenValidator
) -> None:
    other = load_or_create(tmp_path / "other")
    token = issue_token(other, local_settings, ALICE, "auxip-api")
    with pytest.raises(InvalidTokenError, match="unknown key"):
        local_validator.validate(token)


async def test_published_jwks_validates_through_the_remote_path(
    client: Client, store: LocalIdentityStore, local_settings: LocalTokenSettings, signing_key: SigningKey
) -> None:
    jwks = await client.get("/auth/jwks")
    assert jwks.status == 200
    assert await jwks.json() == signing_key.jwks()
    assert StaticJwks(await jwks.json()).keys.keys[0].key_id == signing_key.kid

    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    token = (await (await client.post("/auth/token", data=_form())).json())["access_token"]
    url = str(client.make_url("/auth/jwks"))
    settings = IssuerSettings(issuer=local_settings.issuer, jwks_url=url, source="local")
    validator = TokenValidator(settings)
    assert isinstance(validator.keys, RemoteJwks)
    # PyJWKClient fetches with blocking urllib: off the event loop, which serves the JWKS.
    assert await asyncio.to_thread(validator.validate, token) == ALICE

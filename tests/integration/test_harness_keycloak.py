"""The Keycloak fixture gives a real OpenID provider with the repository's `auxip` realm: RS256 tokens that carry the
audience `auxip-api` and the user's realm roles, verifiable against the published JWKS."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import jwt
import pytest
import requests

from auxip_testing.keycloak import CLIENT_SECRET_ENV, KeycloakServer, wait_for_health

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _token_response(keycloak: KeycloakServer) -> dict[str, Any]:
    response = keycloak.password_grant(keycloak.username, keycloak.password)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _verify(keycloak: KeycloakServer, token: str) -> dict[str, Any]:
    """Full validation as a resource server would do it: key from the JWKS by `kid`, RS256 only, iss, aud, exp."""
    signing_key = jwt.PyJWKClient(keycloak.jwks_url).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience="auxip-api",
        issuer=keycloak.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _with_payload(token: str, change: dict[str, Any]) -> str:
    """The same header and signature around a modified payload."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _b64url(json.dumps({**claims, **change}).encode()), signature])


def test_discovery_document_matches_the_fixture(keycloak: KeycloakServer) -> None:
    document = requests.get(keycloak.well_known_url, timeout=10).json()
    assert document["issuer"] == keycloak.issuer == f"{keycloak.base_url}/realms/auxip"
    assert document["token_endpoint"] == keycloak.token_url
    assert document["jwks_uri"] == keycloak.jwks_url
    assert "password" in document["grant_types_supported"]


def test_password_grant_gives_a_valid_rs256_token_with_audience_and_role(keycloak: KeycloakServer) -> None:
    body = _token_response(keycloak)
    assert body["token_type"].lower() == "bearer"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"

    claims = _verify(keycloak, body["access_token"])

    assert claims["iss"] == keycloak.issuer
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert "auxip-api" in audience
    assert claims["azp"] == "auxip-api"
    assert claims["preferred_username"] == keycloak.username
    now = time.time()
    assert now < claims["exp"] <= now + 300 + 5  # realm accessTokenLifespan is 300 s
    assert claims["iat"] <= now + 5
    roles = claims["realm_access"]["roles"]
    assert "Download" in roles
    assert "Admin" not in roles
    assert "Reporting" not in roles


def test_id_token_is_issued_for_the_openid_scope(keycloak: KeycloakServer) -> None:
    body = _token_response(keycloak)
    signing_key = jwt.PyJWKClient(keycloak.jwks_url).get_signing_key_from_jwt(body["id_token"])
    claims = jwt.decode(body["id_token"], signing_key.key, algorithms=["RS256"], audience="auxip-api")
    assert claims["iss"] == keycloak.issuer
    assert claims["preferred_username"] == keycloak.username


def test_wrong_password_is_rejected(keycloak: KeycloakServer) -> None:
    # 400, not 401: since Keycloak 26.6 invalid_grant follows RFC 6749 section 5.2 (keycloak/keycloak#46528); only
    # a failed client authentication (below) is a 401. Unknown users get the same answer, so names can't be probed.
    for username, password in [(keycloak.username, keycloak.password + "x"), ("no-such-user", keycloak.password)]:
        response = keycloak.password_grant(username, password)
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_grant", "error_description": "Invalid user credentials"}


def test_wrong_client_secret_is_rejected_with_401(keycloak: KeycloakServer) -> None:
    # The literal placeholder is what Keycloak would store if ${AUXIP_API_CLIENT_SECRET} were not substituted at
    # import (it does not fail on an unset variable), so its rejection proves the run-time secret is in force.
    for wrong in [keycloak.client_secret[::-1], f"${{{CLIENT_SECRET_ENV}}}"]:
        response = keycloak.password_grant(keycloak.username, keycloak.password, client_secret=wrong)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized_client"


def test_tampered_payload_fails_signature_validation(keycloak: KeycloakServer) -> None:
    token = _token_response(keycloak)["access_token"]
    forged = _with_payload(token, {"realm_access": {"roles": ["Download", "Admin"]}})
    assert forged != token
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(keycloak, forged)


def test_jwks_publishes_the_rs256_signing_key(keycloak: KeycloakServer) -> None:
    token = _token_response(keycloak)["access_token"]
    keys = requests.get(keycloak.jwks_url, timeout=10).json()["keys"]
    signing = [k for k in keys if k.get("use") == "sig" and k["alg"] == "RS256"]
    assert [k["kid"] for k in signing] == [jwt.get_unverified_header(token)["kid"]]
    assert signing[0]["kty"] == "RSA"


def test_realm_defines_the_auxip_roles(keycloak: KeycloakServer) -> None:
    url = f"{keycloak.base_url}/admin/realms/{keycloak.realm}/roles"
    roles = {role["name"] for role in requests.get(url, headers=keycloak.admin_headers(), timeout=10).json()}
    assert {"Download", "Reporting", "Admin"} <= roles


def test_users_created_at_run_time_get_their_roles(keycloak: KeycloakServer) -> None:
    # The server is shared by the session: a unique name, so a rerun or another test can't collide with this one.
    username, password = f"auxip-reporting-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    keycloak.create_user(username, password, realm_roles=("Reporting", "Admin"))
    claims = _verify(keycloak, keycloak.access_token(username, password))
    assert {"Reporting", "Admin"} <= set(claims["realm_access"]["roles"])
    assert "Download" not in claims["realm_access"]["roles"]


def test_health_endpoint_reports_ready(keycloak: KeycloakServer) -> None:
    wait_for_health(keycloak, timeout=10)
    assert requests.get(f"{keycloak.management_url}/health/ready", timeout=10).json()["status"] == "UP"

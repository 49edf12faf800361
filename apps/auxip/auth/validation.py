"""Bearer token validation, one code path for Keycloak and the embedded issuer: JWKS keys, RS256, iss, aud, exp.

`TokenValidator.validate` is synchronous because a JWKS (re)fetch is a blocking HTTP call; async callers run it in a
worker thread. `Validators` picks the validator by the token's (unverified) issuer, then everything is verified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from auxip.auth.principal import Principal
from auxip.auth.settings import IssuerSettings


class InvalidTokenError(Exception):
    """The token is not acceptable; the message is safe to show to the client."""


class KeySource(Protocol):
    def key_for(self, token: str) -> PyJWK: ...


class RemoteJwks:
    """Keys from a JWKS URL (Keycloak's `.../protocol/openid-connect/certs`), cached by PyJWKClient."""

    def __init__(self, url: str, lifespan_seconds: float = 300.0, timeout_seconds: float = 10.0) -> None:
        self.client = PyJWKClient(url, cache_jwk_set=True, lifespan=lifespan_seconds, timeout=timeout_seconds)

    def key_for(self, token: str) -> PyJWK:
        return self.client.get_signing_key_from_jwt(token)


class StaticJwks:
    """Keys from an in-memory JWKS document (the embedded issuer validating its own tokens without HTTP)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys = PyJWKSet.from_dict(dict(jwks))

    def key_for(self, token: str) -> PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self.keys.keys:
            if key.key_id == kid:
                return key
        raise InvalidTokenError("the token is signed by an unknown key")


def _claim_roles(claims: Mapping[str, Any], client_id: str) -> list[object]:
    names: list[object] = []
    realm = claims.get("realm_access")
    if isinstance(realm, Mapping) and isinstance(realm.get("roles"), list):
        names.extend(realm["roles"])
    resources = claims.get("resource_access")
    client = resources.get(client_id) if isinstance(resources, Mapping) else None
    if isinstance(client, Mapping) and isinstance(client.get("roles"), list):
        names.extend(client["roles"])
    return names


class TokenValidator:
    def __init__(self, settings: IssuerSettings, keys: KeySource | None = None) -> None:
        self.settings = settings
        self.keys = keys or RemoteJwks(settings.jwks_url, settings.jwks_lifespan_seconds)

    def validate(self, token: str) -> Principal:
        settings = self.settings
        try:
            key = self.keys.key_for(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("the token has expired") from exc
        except jwt.PyJWTError as exc:  # includes PyJWKClientError (unknown kid, JWKS unreachable)
            raise InvalidTokenError(f"the token is not valid: {exc}") from exc
        username = claims.get("preferred_username") or claims["sub"]
        if not isinstance(username, str) or not username:
            raise InvalidTokenError("the token names no user")
        roles = settings.role_mapping.map(_claim_roles(claims, settings.client_id))
        return Principal(username, roles, settings.source)


class Validators:
    """The trusted issuers, each with its validator."""

    def __init__(self, validators: Iterable[TokenValidator]) -> None:
        self.by_issuer = {validator.settings.issuer: validator for validator in validators}

    def validate(self, token: str) -> Principal:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("the token is not a JWT") from exc
        validator = self.by_issuer.get(issuer) if isinstance(issuer, str) else None
        if validator is None:
            raise InvalidTokenError("the token is not from a trusted issuer")
        return validator.validate(token)

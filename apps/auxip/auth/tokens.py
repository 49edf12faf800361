"""Issuing access tokens at the embedded token endpoint, shaped like Keycloak's (realm_access.roles, azp, aud)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt

from auxip.auth.keys import SigningKey
from auxip.auth.principal import Principal
from auxip.auth.settings import LocalTokenSettings


def issue_token(
    key: SigningKey,
    settings: LocalTokenSettings,
    principal: Principal,
    client_id: str,
    *,
    now: datetime | None = None,
    lifetime_seconds: int | None = None,
) -> str:
    issued = now or datetime.now(UTC)
    lifetime = settings.token_lifetime_seconds if lifetime_seconds is None else lifetime_seconds
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": principal.username,
        "preferred_username": principal.username,
        "azp": client_id,
        "iat": issued,
        "exp": issued + timedelta(seconds=lifetime),
        "jti": secrets.token_urlsafe(16),
        "typ": "Bearer",
        "realm_access": {"roles": sorted(role.value for role in principal.roles)},
    }
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})

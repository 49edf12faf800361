"""Typed configuration of authentication and quotas (frozen dataclasses; defaults are safe for production)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from auxip.auth.principal import Role, RoleMapping, Source


@dataclass(frozen=True)
class IssuerSettings:
    """One token issuer the API trusts: Keycloak in production, the embedded token endpoint otherwise."""

    issuer: str
    jwks_url: str
    source: Source = "keycloak"
    audience: str = "auxip-api"
    # The client whose `resource_access[client].roles` count as well as the realm roles.
    client_id: str = "auxip-api"
    # Pinned: never take the algorithm from the token header (alg=none / HS256-with-public-key confusion).
    algorithms: tuple[str, ...] = ("RS256",)
    # Clock skew tolerated between the issuer and this host.
    leeway_seconds: float = 30.0
    # JWKS cache lifetime; an unknown `kid` forces a refetch at most once per PyJWT's cooldown (30 s).
    jwks_lifespan_seconds: float = 300.0
    role_mapping: RoleMapping = field(default_factory=RoleMapping)


@dataclass(frozen=True)
class LocalTokenSettings:
    """The embedded OAuth2 token endpoint (used when no Keycloak is deployed)."""

    data_dir: Path
    issuer: str = "urn:auxip:local"
    audience: str = "auxip-api"
    # Clients allowed to use the password grant; a non-empty value is that client's secret.
    clients: Mapping[str, str] = field(default_factory=lambda: {"auxip-api": ""})
    token_lifetime_seconds: int = 300  # Keycloak's realm uses the same access-token lifespan


@dataclass(frozen=True)
class QuotaLimits:
    max_parallel_downloads: int = 4
    max_bytes_per_window: int = 500 * 1024**3
    window: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class QuotaSettings:
    """Limits per role (a user gets the most generous limits among its roles) and per user (which win)."""

    default: QuotaLimits = field(default_factory=QuotaLimits)
    per_role: Mapping[Role, QuotaLimits] = field(default_factory=dict)
    per_user: Mapping[str, QuotaLimits] = field(default_factory=dict)
    # Retry-After for a refused parallel download: no completion time is known, so a fixed hint.
    parallel_retry_after_seconds: int = 10

"""AUXIP authentication, roles and quotas.

Modules, one job each:
- `principal`: `Principal`, `Role` and the mapping of external role names;
- `settings`: typed configuration (trusted issuers, the embedded token endpoint, quota limits);
- `models`: the `users` and `download_record` tables (Alembic revision 0002);
- `passwords`, `users`, `basic_cache`, `store`: the local identity store (argon2id, cached Basic verification);
- `keys`, `tokens`, `token_endpoint`: the embedded OAuth2 password-grant endpoint and its JWKS;
- `validation`: Bearer token validation (JWKS, RS256, issuer, audience, expiry), shared by Keycloak and local tokens;
- `authenticate`: `authenticate(request)` and `require(request, Role...)` for handlers;
- `downloads`, `quotas`: download records and the per-user parallel/volume quotas.
"""

from auxip.auth.authenticate import AUTHENTICATOR, Authenticator, authenticate, require
from auxip.auth.principal import Principal, Role, RoleMapping
from auxip.auth.quotas import Quotas
from auxip.auth.settings import IssuerSettings, LocalTokenSettings, QuotaLimits, QuotaSettings
from auxip.auth.store import LocalIdentityStore
from auxip.auth.validation import TokenValidator, Validators

__all__ = [
    "AUTHENTICATOR",
    "Authenticator",
    "IssuerSettings",
    "LocalIdentityStore",
    "LocalTokenSettings",
    "Principal",
    "QuotaLimits",
    "QuotaSettings",
    "Quotas",
    "Role",
    "RoleMapping",
    "TokenValidator",
    "Validators",
    "authenticate",
    "require",
]

"""Per-request authentication: `await authenticate(request)` -> Principal, `await require(request, Role...)`.

Accepted credentials: `Authorization: Basic` (local store), `Authorization: Bearer <jwt>` and the legacy S1 header
`OAUTH2-ACCESS-TOKEN: <jwt>`. Failures raise `ODataError` (401 with the challenge, 403 for a missing role), which the
`odata_errors` middleware renders. The result is memoised on the request, so handlers can call `require` freely.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

from auxip.api.errors import ODataError
from auxip.auth.principal import Principal, Role
from auxip.auth.store import LocalIdentityStore
from auxip.auth.validation import InvalidTokenError, Validators

CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="AUXIP", Bearer'}
LEGACY_TOKEN_HEADER: Final = "OAUTH2-ACCESS-TOKEN"  # noqa: S105 - a header name, not a secret


def unauthorized(message: str) -> ODataError:
    return ODataError(401, "Unauthorized", message, headers=CHALLENGE)


@dataclass(frozen=True)
class Authenticator:
    """What the app trusts; either part may be absent (no local users in production, no issuers in a dev setup)."""

    store: LocalIdentityStore | None
    validators: Validators

    async def principal_for(self, request: web.Request) -> Principal:
        authorization = request.headers.get(hdrs.AUTHORIZATION, "")
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic" and credentials:
            return await self._basic(credentials)
        if scheme.lower() == "bearer" and credentials:
            return await self._bearer(credentials)
        legacy = request.headers.get(LEGACY_TOKEN_HEADER, "").strip()
        if not authorization and legacy:
            return await self._bearer(legacy)
        if authorization:
            raise unauthorized("unsupported Authorization scheme: use Basic or Bearer")
        raise unauthorized("authentication required")

    async def _basic(self, credentials: str) -> Principal:
        if self.store is None:
            raise unauthorized("Basic authentication is not enabled: use a Bearer token")
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise unauthorized("malformed Basic credentials") from exc
        username, colon, password = decoded.partition(":")
        if not colon:
            raise unauthorized("malformed Basic credentials")
        # argon2 and the database block: a worker thread keeps the event loop serving other requests.
        principal = await asyncio.to_thread(self.store.verify, username, password)
        if principal is None:
            raise unauthorized("invalid username or password")
        return principal

    async def _bearer(self, token: str) -> Principal:
        try:
            # A JWKS refetch is a blocking HTTP call; cached keys make this fast otherwise.
            return await asyncio.to_thread(self.validators.validate, token)
        except InvalidTokenError as exc:
            raise unauthorized(str(exc)) from exc


AUTHENTICATOR: Final = web.AppKey("auxip_authenticator", Authenticator)
_PRINCIPAL: Final = web.RequestKey("auxip_principal", Principal)


async def authenticate(request: web.Request) -> Principal:
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]
    principal = await request.config_dict[AUTHENTICATOR].principal_for(request)
    request[_PRINCIPAL] = principal
    return principal


async def require(request: web.Request, *roles: Role) -> Principal:
    """The caller, who must hold at least one of `roles` (any authenticated caller when none are given)."""
    principal = await authenticate(request)
    if not principal.has_any(*roles):
        wanted = " or ".join(role.value for role in roles)
        raise ODataError(403, "Forbidden", f"this operation needs role {wanted}")
    return principal

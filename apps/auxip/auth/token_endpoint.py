"""The embedded OAuth2 token endpoint (RFC 6749 resource owner password grant) and its JWKS.

Answers follow RFC 6749 section 5 (`{"error": ...}` bodies, `Cache-Control: no-store`), not the OData error shape,
because OAuth2 clients parse them. Mount with `add_token_routes(app, issuer)`.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from auxip.auth.keys import SigningKey
from auxip.auth.settings import LocalTokenSettings
from auxip.auth.store import LocalIdentityStore
from auxip.auth.tokens import issue_token

NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class LocalIssuer:
    settings: LocalTokenSettings
    key: SigningKey
    store: LocalIdentityStore


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description}, status=status, headers={**NO_STORE, **(headers or {})}
    )


def _client_ok(settings: LocalTokenSettings, client_id: str, client_secret: str) -> bool:
    if client_id not in settings.clients:
        return False
    expected = settings.clients[client_id]
    return not expected or hmac.compare_digest(expected.encode(), client_secret.encode())


def token_handler(issuer: LocalIssuer) -> Handler:
    async def token(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        grant_type = fields.get("grant_type", "")
        if not grant_type:
            return oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type != "password":
            return oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
        username, password = fields.get("username", ""), fields.get("password", "")
        client_id = fields.get("client_id", "")
        if not username or not password or not client_id:
            return oauth_error(400, "invalid_request", "username, password and client_id are required")
        if not _client_ok(issuer.settings, client_id, fields.get("client_secret", "")):
            return oauth_error(401, "invalid_client", "unknown client or wrong client secret")
        principal = await asyncio.to_thread(issuer.store.verify, username, password)
        if principal is None:
            return oauth_error(400, "invalid_grant", "invalid user credentials")
        access_token = issue_token(issuer.key, issuer.settings, principal, client_id)
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": issuer.settings.token_lifetime_seconds,
        }
        if "scope" in fields:
            body["scope"] = fields["scope"]  # accepted and echoed; the roles, not scopes, grant access
        return web.json_response(body, headers=NO_STORE)

    return token


def jwks_handler(issuer: LocalIssuer) -> Handler:
    async def jwks(_request: web.Request) -> web.StreamResponse:
        return web.json_response(issuer.key.jwks())

    return jwks


def add_token_routes(app: web.Application, issuer: LocalIssuer, prefix: str = "/auth") -> None:
    app.router.add_post(f"{prefix}/token", token_handler(issuer))
    app.router.add_get(f"{prefix}/jwks", jwks_handler(issuer))

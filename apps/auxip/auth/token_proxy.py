"""`/auth/token` in front of Keycloak: downloaders keep one token URL on the AUXIP host, whatever the IdP.

This is what the original system's API gateway did. The proxy also folds repeated identical form fields into one:
ESA's conformance collection sends `client_secret` twice in one of its token requests, and Keycloak refuses any
duplicated parameter, while repeats with different values stay an error (they are ambiguous).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import hdrs, web

from auxip.api.errors import Handler
from auxip.auth.token_endpoint import NO_STORE, oauth_error

FORWARDED_HEADERS = (hdrs.AUTHORIZATION,)
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=15)


def fold_fields(fields: Mapping[str, str] | list[tuple[str, str]]) -> dict[str, str] | str:
    """One value per field, or the name of the field that was given twice with different values."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    folded: dict[str, str] = {}
    for name, value in items:
        if name in folded and folded[name] != value:
            return name
        folded[name] = value
    return folded


def token_proxy_handler(upstream_token_url: str) -> Handler:
    async def token(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields = fold_fields([(name, value) for name, value in form.items() if isinstance(value, str)])
        if isinstance(fields, str):
            return oauth_error(400, "invalid_request", f"{fields} is given twice with different values")
        headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
        try:
            async with (
                aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT) as session,
                session.post(upstream_token_url, data=fields, headers=headers) as upstream,
            ):
                body = await upstream.read()
                content_type = upstream.headers.get(hdrs.CONTENT_TYPE, "application/json")
                return web.Response(
                    body=body, status=upstream.status, headers={**NO_STORE, "Content-Type": content_type}
                )
        except (aiohttp.ClientError, TimeoutError):
            return oauth_error(503, "temporarily_unavailable", "the identity provider is unreachable; retry later")

    return token


def add_token_proxy_route(app: web.Application, upstream_token_url: str, prefix: str = "/auth") -> None:
    app.router.add_post(f"{prefix}/token", token_proxy_handler(upstream_token_url))

"""The Subscriptions entity set: create, list, read, and the Pause / Resume / Cancel bound actions.

Who is calling comes from `PRINCIPAL_RESOLVER` (an async callable: request -> (username, sees_all)), set by whoever
assembles the application; the default refuses every call with 401 so nothing is ever served unauthenticated.
The delivery of notifications is not here: see `auxip.subscriptions.service`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.orm import Session

from auxip.api.db import in_session
from auxip.api.envelope import collection
from auxip.api.errors import ODataError, bad_request, not_found
from auxip.odata import parse_query_options
from auxip.subscriptions import store
from auxip.subscriptions.entity import ENTITY_CONTEXT, SUBSCRIPTIONS, subscription_json
from auxip.subscriptions.models import Subscription
from auxip.subscriptions.product_filter import FilterError, compile_product_filter

PrincipalResolver = Callable[[web.Request], Awaitable[tuple[str, bool]]]

PRINCIPAL_RESOLVER = web.AppKey[PrincipalResolver]("subscriptions_principal_resolver")

ROOT: Final = "/odata/v1/Subscriptions"
PAGE_CAP: Final = 1000
_KEY: Final = re.compile(r"'?([0-9a-fA-F-]{36})'?")
_ACTIONS: Final[dict[str, store.Action]] = {
    f"{prefix}{name}": name for prefix in ("OData.CSC.", "") for name in ("Pause", "Resume", "Cancel")
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _unauthenticated(_request: web.Request) -> tuple[str, bool]:
    raise ODataError(401, "Unauthorized", "authentication required", {"WWW-Authenticate": 'Basic realm="AUXIP"'})


async def _caller(request: web.Request) -> store.Caller:
    username, sees_all = await request.app[PRINCIPAL_RESOLVER](request)
    return store.Caller(username, sees_all)


def _entity(subscription: Subscription) -> dict[str, Any]:
    return {"@odata.context": ENTITY_CONTEXT, **subscription_json(subscription)}


def _optional_text(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise bad_request(f"{name} must be a string of at most {max_length} characters")
    return value


def _new_subscription(body: Any) -> store.NewSubscription:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    filter_param = body.get("FilterParam")
    if not isinstance(filter_param, str) or not filter_param.strip():
        raise bad_request("FilterParam is required: a Products $filter expression")
    try:
        compile_product_filter(filter_param)
    except FilterError as exc:
        raise bad_request(f"FilterParam is not a valid Products $filter: {exc}", "InvalidFilter") from None
    endpoint = body.get("NotificationEndpoint")
    if not isinstance(endpoint, str) or len(endpoint) > 2048:
        raise bad_request("NotificationEndpoint is required: an http(s) URL")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("NotificationEndpoint must be an absolute http or https URL")
    username = _optional_text(body, "NotificationEpUsername", 255)
    if username is not None and ":" in username:
        raise bad_request("NotificationEpUsername cannot contain ':' (HTTP Basic auth separates it from the password)")
    return store.NewSubscription(
        filter_param=filter_param,
        endpoint=endpoint,
        username=username,
        password=_optional_text(body, "NotificationEpPassword", 1024),
    )


async def create_subscription(request: web.Request) -> web.Response:
    caller = await _caller(request)
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("the request body is not valid JSON") from None
    new = _new_subscription(body)
    subscription = await in_session(request.app, lambda session: store.create(session, caller, new, _utc_now))
    return web.json_response(_entity(subscription), status=201, headers={"Location": f"{ROOT}({subscription.id})"})


async def list_subscriptions(request: web.Request) -> web.Response:
    caller = await _caller(request)
    # The generic OData options: $filter (compiled for the Subscriptions description), $orderby, $top, $skip,
    # $count, $select, $format; a $top above the page cap is served in pages linked by @odata.nextLink.
    options = parse_query_options(request.query, SUBSCRIPTIONS, page_cap=PAGE_CAP)

    def work(session: Session) -> store.Page:
        return store.list_page(
            session, caller, options.where, options.order_clauses(), options.limit, options.skip, options.count
        )

    page = await in_session(request.app, work)
    items = [subscription_json(item, options.select) for item in page.items]
    return web.json_response(collection(request, "Subscriptions", options, items, page.count))


def _key(request: web.Request) -> uuid.UUID:
    """`Subscriptions(<uuid>)` and `Subscriptions('<uuid>')` both name the same entity."""
    match = _KEY.fullmatch(request.match_info["key"])
    if match is None or match.group(0).count("'") == 1:
        raise bad_request("the key must be a GUID, optionally in single quotes")
    try:
        return uuid.UUID(match.group(1))
    except ValueError:
        raise bad_request("the key must be a GUID, optionally in single quotes") from None


async def read_subscription(request: web.Request) -> web.Response:
    caller = await _caller(request)
    subscription_id = _key(request)
    subscription = await in_session(request.app, lambda session: store.get(session, caller, subscription_id))
    if subscription is None:
        raise not_found(f"no subscription {subscription_id}")
    return web.json_response(_entity(subscription))


async def subscription_action(request: web.Request) -> web.Response:
    caller = await _caller(request)
    subscription_id = _key(request)
    action = _ACTIONS.get(request.match_info["action"])
    if action is None:
        raise not_found(f"no action {request.match_info['action']!r}; bound actions: Pause, Resume, Cancel")

    def work(session: Session) -> Subscription | None:
        return store.apply_action(session, caller, subscription_id, action)

    try:
        subscription = await in_session(request.app, work)
    except store.TransitionError as exc:
        raise bad_request(str(exc), "InvalidStatus") from None
    if subscription is None:
        raise not_found(f"no subscription {subscription_id}")
    # 200 with the entity (the suite accepts 200/201/202/204): the client sees the resulting Status.
    return web.json_response(_entity(subscription))


def add_subscription_routes(app: web.Application) -> None:
    """Register the Subscriptions routes; keeps a resolver already set, else installs the refusing default."""
    if PRINCIPAL_RESOLVER not in app:
        app[PRINCIPAL_RESOLVER] = _unauthenticated
    app.router.add_post(ROOT, create_subscription)
    app.router.add_get(ROOT, list_subscriptions)
    app.router.add_get(ROOT + "({key:[^/()]*})", read_subscription)
    app.router.add_post(ROOT + "({key:[^/()]*})/{action}", subscription_action)

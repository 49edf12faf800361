"""One HTTP notification: the JSON body the contract defines, POSTed with the endpoint's Basic credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from auxip.api.formats import odata_timestamp


@dataclass(frozen=True)
class Delivery:
    subscription_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    endpoint: str
    username: str | None
    # repr=False: a Delivery may end up in a log line or a traceback; the password must not.
    password: str | None = field(repr=False)


def notification_body(delivery: Delivery, notification_date: datetime) -> dict[str, Any]:
    return {
        "@odata.context": "$metadata#Notification/$entity",
        "ProductId": str(delivery.product_id),
        "ProductName": delivery.product_name,
        "SubscriptionId": str(delivery.subscription_id),
        "NotificationDate": odata_timestamp(notification_date),
    }


async def post_notification(
    session: aiohttp.ClientSession, delivery: Delivery, notification_date: datetime
) -> str | None:
    """POST the notification; None on a 2xx answer, otherwise a short reason (never containing credentials)."""
    headers = {}
    if delivery.username:
        try:
            headers["Authorization"] = aiohttp.encode_basic_auth(delivery.username, delivery.password or "")
        except ValueError:
            # Refused at creation; a row written otherwise fails like an unreachable endpoint (no secret in it).
            return "the endpoint username cannot be used for HTTP Basic auth"
    try:
        async with session.post(
            delivery.endpoint,
            json=notification_body(delivery, notification_date),
            headers=headers,
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status} {response.reason or ''}".strip()
    except (TimeoutError, aiohttp.ClientError) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]

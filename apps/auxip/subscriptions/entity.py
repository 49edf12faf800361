"""The Subscriptions entity set as the API exposes it: JSON shape and the description `auxip.odata` queries by."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from auxip.api.formats import odata_timestamp
from auxip.odata import EdmType, Entity, EnumType, Property
from auxip.subscriptions.models import SUBSCRIPTION_STATUSES, Subscription

ENTITY_CONTEXT: Final = "$metadata#Subscriptions/$entity"

SUBSCRIPTION_STATUS: Final = EnumType("OData.CSC.SubscriptionStatus", frozenset(SUBSCRIPTION_STATUSES))

_table = Subscription.__table__
# Every exposed property is filterable and sortable; the owner and the endpoint password are not exposed at all.
SUBSCRIPTIONS: Final = Entity(
    name="Subscriptions",
    table=_table,
    key="Id",
    properties={
        "Id": Property(_table.c.id, EdmType.GUID),
        "Status": Property(_table.c.status, EdmType.ENUM, enum_type=SUBSCRIPTION_STATUS),
        "FilterParam": Property(_table.c.filter_param, EdmType.STRING),
        "SubmissionDate": Property(_table.c.submission_date, EdmType.DATETIME),
        "LastNotificationDate": Property(_table.c.last_notification_date, EdmType.DATETIME, nullable=True),
        "NotificationEndpoint": Property(_table.c.notification_endpoint, EdmType.STRING),
        "NotificationEpUsername": Property(_table.c.endpoint_username, EdmType.STRING, nullable=True),
    },
    selectable=frozenset(
        {
            "Id",
            "Status",
            "FilterParam",
            "SubmissionDate",
            "LastNotificationDate",
            "NotificationEndpoint",
            "NotificationEpUsername",
        }
    ),
)


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else odata_timestamp(value)


def subscription_json(subscription: Subscription, select: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The entity's properties (only `select`ed ones if given). The endpoint password is never among them."""
    properties = {
        "Id": str(subscription.id),
        "Status": subscription.status,
        "FilterParam": subscription.filter_param,
        "SubmissionDate": odata_timestamp(subscription.submission_date),
        "NotificationEndpoint": subscription.notification_endpoint,
        "NotificationEpUsername": subscription.endpoint_username,
        "LastNotificationDate": _timestamp(subscription.last_notification_date),
    }
    if select is None:
        return properties
    return {name: value for name, value in properties.items() if name in select or name == "Id"}

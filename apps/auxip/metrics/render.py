"""Metric rows to their JSON representation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row

from auxip.api.formats import odata_timestamp


def gauge_text(integer: int | None, seconds: float | None) -> str | None:
    """The Gauge string: an integer as it is, seconds at the API's millisecond precision ("150.250")."""
    if integer is not None:
        return str(integer)
    if seconds is not None:
        return f"{seconds:.3f}"
    return None


def metric_json(row: Row[Any], timestamp: datetime, select: tuple[str, ...] | None = None) -> dict[str, Any]:
    """One Metric entity; a Counter carries Count, a Gauge carries Gauge (the other is omitted, not null)."""
    properties: dict[str, Any] = {
        "Name": row.name,
        "Timestamp": odata_timestamp(timestamp),
        "MetricType": row.metric_type,
    }
    gauge = gauge_text(row.gauge_integer, row.gauge_seconds)
    if gauge is not None:
        properties["Gauge"] = gauge
    else:
        properties["Count"] = row.count
    if select is None:
        return properties
    return {name: value for name, value in properties.items() if name in select or name == "Name"}

"""The Metrics entity set as `auxip.odata` queries it: properties bound to the columns of `metric_rows`.

Built per request because the rows depend on the request time (Timestamp, the OriginToPublication windows); building
it is a few Python objects, the compiler holds no state. `Gauge` is readable and selectable but neither filterable nor
sortable: it is a number rendered as a string (seconds or an integer), and comparing it as text would order "10"
before "9", while comparing it as a number would not be what the EDM type (Edm.String) promises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import literal

from auxip.catalog.types import UTCDateTime
from auxip.metrics.queries import COUNTER, GAUGE, metric_rows
from auxip.odata import EdmType, Entity, EnumType, Property

METRIC_TYPE: Final = EnumType("OData.CSC.MetricType", frozenset({GAUGE, COUNTER}))
PROPERTIES: Final = ("Name", "Timestamp", "MetricType", "Gauge", "Count")


def metrics_entity(now: datetime) -> Entity:
    rows = metric_rows(now)
    return Entity(
        name="Metrics",
        table=rows,
        key="Name",
        properties={
            "Name": Property(rows.c.name, EdmType.STRING),
            # Every metric is computed at `now`: a bound literal, so Timestamp filters compare two parameters.
            "Timestamp": Property(literal(now, UTCDateTime()), EdmType.DATETIME),
            "MetricType": Property(rows.c.metric_type, EdmType.ENUM, enum_type=METRIC_TYPE),
            "Count": Property(rows.c.count, EdmType.INT64, nullable=True),
        },
        selectable=frozenset(PROPERTIES),
    )

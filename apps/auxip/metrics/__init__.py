"""Monitoring metrics of the ICD (the Metrics entity set), computed from the catalog and the download records.

Modules, one job each:
- `naming`: ICD metric names assembled in SQL, and the `_` segment for a missing attribute;
- `elapsed`: seconds between two timestamps in SQL, per dialect;
- `queries`: every metric family as a GROUP BY, united into one select of metric rows (scaling notes there);
- `entity`: the OData description of those rows, so the generic `$filter` compiler applies to them;
- `render`: rows to Metric JSON;
- `cache`: a short-lived response cache.
"""

from auxip.metrics.cache import TtlCache
from auxip.metrics.entity import METRIC_TYPE, metrics_entity
from auxip.metrics.naming import MISSING_SEGMENT
from auxip.metrics.queries import COUNTER, GAUGE, metric_rows
from auxip.metrics.render import metric_json

__all__ = [
    "COUNTER",
    "GAUGE",
    "METRIC_TYPE",
    "MISSING_SEGMENT",
    "TtlCache",
    "metric_json",
    "metric_rows",
    "metrics_entity",
]

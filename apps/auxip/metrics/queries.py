"""The Metrics entity set as one SQL select: every metric is a row computed by GROUP BY at request time.

Each family of the ICD is one aggregate over the catalog or the download records, grouped by the name's segments;
the families are then UNION ALL-ed into rows of one shape (name, metric_type, count, gauge_integer, gauge_seconds),
so `$filter`, `$orderby`, `$top`/`$skip` and `$count` apply to that union in SQL through the generic compiler (see
`auxip.metrics.entity`). Python only ever sees one page of metric rows, never products.

Families and what they count:
- `<type>.<platform>.<unit>.size|count` (Counter): every product ever published, evicted ones included; the rows stay
  in the catalog after eviction (`Product.evicted_at`), and a counter must never decrease;
- `Download.<type>.<platform>.<unit>.<client>.size|completed|failed` (Counter): download records by user, `size` being
  the bytes of completed downloads (a failed transfer delivered no usable product); in-progress records are left out
  until they end. The product type comes from the record (the download guard writes `unknown` when the product had
  no productType attribute); platform and unit from the product's attributes (the
  product row and its attributes outlive eviction; a record whose product is gone gets `_` segments);
- `OriginToPublication.Daily|Monthly.min|max|avg.time.<type>.<platform>.<unit>` (Gauge): seconds from OriginDate to
  PublicationDate of the products published in the last day / the last 30 days;
- `Service.Products.value` and `Service.Volume.value` (Gauge): products online (not evicted) and their bytes.

Cost, and scaling to a million products (PostgreSQL). The product families (counters, both OriginToPublication
windows, Service) share one GROUP BY over product and its three name attributes (`_product_groups`), so the catalog is
read once per request, not once per family. The planner hash-joins a sequential scan of product with the three
attribute rows of each product (found by name: sequential scan of product_attribute, or a bitmap scan of an
`ix_attribute_*` index, whose leading column is the name), then sorts the joined rows by group. The windows cannot
use `ix_product_publication` in that pass, but every row is read for the counters anyway. Measured with 300,000
sample products on 2 shared cores: 1.1 s per request, linear, so about 4 s at 10^6 (PostgreSQL JIT made no
difference). Download metrics are grouped over `download_record` with the attributes fetched by their primary key
(product_id, name), proportional to the number of records.
That is why the handler caches each distinct response for a few seconds (`auxip.metrics.cache`): dashboards polling
the same queries aggregate once per interval. Beyond that, the next step would be a summary table maintained on
publication and download (the families are all sums, counts, min and max, i.e. incrementally maintainable, except
the sliding windows); it is not needed at the AUXIP's size (~10^5 products).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Double,
    FromClause,
    Select,
    String,
    Subquery,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)

from auxip.auth.models import DownloadRecord
from auxip.catalog.models import Attribute, Product
from auxip.metrics.elapsed import elapsed_seconds
from auxip.metrics.naming import PLATFORM_SERIAL_IDENTIFIER, PLATFORM_SHORT_NAME, PRODUCT_TYPE, dotted, segment

GAUGE: Final = "Gauge"
COUNTER: Final = "Counter"

#: OriginToPublication windows: name segment -> how far back PublicationDate may be.
WINDOWS: Final = {"Daily": timedelta(days=1), "Monthly": timedelta(days=30)}
STATISTICS: Final = ("min", "max", "avg")

_product = Product.__table__
_record = DownloadRecord.__table__


def _with_attributes(base: FromClause, product_id: ColumnElement[Any], names: Sequence[str]) -> tuple[
    FromClause, list[ColumnElement[Any]]
]:  # fmt: skip
    """`base` left-joined with one attribute row per name (at most one: the primary key is (product_id, name)).

    Returns the joined clause and each attribute's raw string value (NULL when absent). Queries GROUP BY these raw
    columns and select `segment(column)`: PostgreSQL would not recognise two `coalesce(column, <parameter>)` as the
    same expression in SELECT and GROUP BY (each literal is its own parameter).
    """
    joined = base
    values: list[ColumnElement[Any]] = []
    for name in names:
        table = Attribute.__table__.alias(f"attribute_{name}")
        joined = joined.outerjoin(table, (table.c.product_id == product_id) & (table.c.name == name))
        values.append(table.c.value_string)
    return joined, values


def _row(
    name: ColumnElement[str],
    metric_type: str,
    count: ColumnElement[Any] | None = None,
    gauge_integer: ColumnElement[Any] | None = None,
    gauge_seconds: ColumnElement[Any] | None = None,
) -> list[ColumnElement[Any]]:
    """The columns of one union member, typed explicitly so every member agrees (PostgreSQL checks UNION types)."""
    return [
        name.label("name"),
        literal(metric_type, String()).label("metric_type"),
        cast(count if count is not None else null(), BigInteger).label("count"),
        cast(gauge_integer if gauge_integer is not None else null(), BigInteger).label("gauge_integer"),
        cast(gauge_seconds if gauge_seconds is not None else null(), Double).label("gauge_seconds"),
    ]


def _product_groups(now: datetime) -> CTE:
    """One pass over product and its three name attributes, every product family aggregated per group.

    The windows and the online state are conditional aggregates (`CASE WHEN ... THEN x END` is NULL outside, which
    min/max/avg/count skip) rather than separate WHERE-filtered queries: each separate query would repeat the same
    join over the whole catalog, while the counters need that full pass anyway.
    """
    joined, (ptype, platform, unit) = _with_attributes(
        _product, _product.c.id, (PRODUCT_TYPE, PLATFORM_SHORT_NAME, PLATFORM_SERIAL_IDENTIFIER)
    )
    seconds = elapsed_seconds(_product.c.origin_date, _product.c.publication_date)
    online = _product.c.evicted_at.is_(None)
    columns: list[ColumnElement[Any]] = [
        segment(ptype).label("ptype"),
        segment(platform).label("platform"),
        segment(unit).label("unit"),
        func.count().label("products"),
        func.sum(_product.c.content_length).label("bytes"),
        func.sum(case((online, 1), else_=0)).label("online_products"),
        func.sum(case((online, _product.c.content_length), else_=0)).label("online_bytes"),
    ]
    for window, length in WINDOWS.items():
        since = literal(now - length, _product.c.publication_date.type)
        in_window = case((_product.c.publication_date > since, seconds))
        columns.append(func.count(in_window).label(f"{window}_n"))
        columns.extend(getattr(func, statistic)(in_window).label(f"{window}_{statistic}") for statistic in STATISTICS)
    return select(*columns).select_from(joined).group_by(ptype, platform, unit).cte("product_groups")


def _published(groups: CTE) -> list[Select[Any]]:
    prefix = (groups.c.ptype, groups.c.platform, groups.c.unit)
    return [
        select(*_row(dotted(*prefix, "size"), COUNTER, count=groups.c.bytes)),
        select(*_row(dotted(*prefix, "count"), COUNTER, count=groups.c.products)),
    ]


def _downloads() -> list[Select[Any]]:
    # No join with product itself: the attributes are keyed by product_id, which the record carries.
    joined, (platform, unit) = _with_attributes(
        _record, _record.c.product_id, (PLATFORM_SHORT_NAME, PLATFORM_SERIAL_IDENTIFIER)
    )
    completed = _record.c.status == "completed"
    groups = (
        select(
            _record.c.product_type.label("ptype"),
            segment(platform).label("platform"),
            segment(unit).label("unit"),
            _record.c.username.label("client"),
            func.sum(case((completed, _record.c.bytes), else_=0)).label("bytes"),
            func.sum(case((completed, 1), else_=0)).label("completed"),
            func.sum(case((_record.c.status == "failed", 1), else_=0)).label("failed"),
        )
        .select_from(joined)
        .where(_record.c.status.in_(("completed", "failed")))
        .group_by(_record.c.product_type, platform, unit, _record.c.username)
        .cte("downloads")
    )
    prefix = ("Download", groups.c.ptype, groups.c.platform, groups.c.unit, groups.c.client)
    return [
        select(*_row(dotted(*prefix, "size"), COUNTER, count=groups.c.bytes)),
        select(*_row(dotted(*prefix, "completed"), COUNTER, count=groups.c.completed)),
        select(*_row(dotted(*prefix, "failed"), COUNTER, count=groups.c.failed)),
    ]


def _origin_to_publication(groups: CTE) -> list[Select[Any]]:
    members: list[Select[Any]] = []
    for window in WINDOWS:
        for statistic in STATISTICS:
            name = dotted("OriginToPublication", window, statistic, "time", groups.c.ptype, groups.c.platform,
                          groups.c.unit)  # fmt: skip
            # A group with nothing published in the window has no such gauge (rather than a gauge without a value).
            member = select(*_row(name, GAUGE, gauge_seconds=groups.c[f"{window}_{statistic}"]))
            members.append(member.where(groups.c[f"{window}_n"] > 0))
    return members


def _service(groups: CTE) -> list[Select[Any]]:
    # Sums over the groups: one row each even for an empty catalog (coalesce: the sum of no rows is NULL).
    online = select(
        func.coalesce(func.sum(groups.c.online_products), 0).label("products"),
        func.coalesce(func.sum(groups.c.online_bytes), 0).label("bytes"),
    ).cte("online")
    return [
        select(*_row(literal("Service.Products.value", String()), GAUGE, gauge_integer=online.c.products)),
        select(*_row(literal("Service.Volume.value", String()), GAUGE, gauge_integer=online.c.bytes)),
    ]


def metric_rows(now: datetime) -> Subquery:
    """All metrics as of `now`, one row each: (name, metric_type, count, gauge_integer, gauge_seconds)."""
    groups = _product_groups(now)
    members = [*_published(groups), *_downloads(), *_origin_to_publication(groups), *_service(groups)]
    return union_all(*members).subquery("metrics")

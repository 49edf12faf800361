"""`elapsed_seconds(start, end)`: the seconds between two catalog timestamps, as a double, computed by the database.

The backends store timestamps differently (see `auxip.catalog.types`): PostgreSQL subtracts two `timestamptz` into an
interval whose epoch is exact to the microsecond; SQLite holds "YYYY-MM-DD hh:mm:ss.ffffff" text, which `julianday`
parses into fractional days (a double: about 50 microseconds of resolution at today's dates, enough for gauges the API
rounds to milliseconds). A compiled construct keeps the aggregation in SQL on both, without dialect checks in queries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Double
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


# Lower case like SQLAlchemy's own SQL function classes (`func.now`, `sql.functions.coalesce`).
class elapsed_seconds(FunctionElement[float]):
    """`end - start` in seconds (double precision); NULL if either side is NULL."""

    type = Double()
    inherit_cache = True
    name = "elapsed_seconds"

    def __init__(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> None:
        super().__init__(start, end)


def _arguments(element: elapsed_seconds, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    start, end = list(element.clauses)
    return compiler.process(start, **kw), compiler.process(end, **kw)


@compiles(elapsed_seconds, "postgresql")
def _postgresql(element: elapsed_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


@compiles(elapsed_seconds, "sqlite")
def _sqlite(element: elapsed_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(elapsed_seconds)
def _unsupported(element: elapsed_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"elapsed_seconds is not implemented for {compiler.dialect.name}")

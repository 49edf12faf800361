"""OData system query options of a collection request, validated into a typed `QueryOptions`.

Paging: `$skip` is applied before `$top`. The server never returns more than `page_cap` rows per response (default
1000, the contract's minimum); a larger or missing `$top` is capped rather than refused, and `capped` tells the
caller so it can add `@odata.nextLink` (`QueryOptions.next_page` computes its `$skip`/`$top`). Ordering always ends
with the entity key, so pages of equal sort values do not overlap or skip rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from odata_query import ast
from sqlalchemy import ColumnElement, UnaryExpression

from auxip.api.errors import bad_request
from auxip.odata.compiler import MAX_DEPTH, FilterCompiler
from auxip.odata.entities import Entity
from auxip.odata.parser import MAX_FILTER_BYTES, parse_filter

DEFAULT_PAGE_CAP: Final = 1000
# $skip beyond this is certainly past the end, and larger values would overflow the databases' 64-bit OFFSET.
MAX_SKIP: Final = 2**62
MAX_ORDERBY_KEYS: Final = 10
KNOWN_OPTIONS: Final = frozenset({"$filter", "$orderby", "$top", "$skip", "$count", "$expand", "$select", "$format"})
FORMATS: Final = frozenset({"json", "application/json"})

_NON_NEGATIVE: Final = re.compile(r"\d{1,20}")
_ORDER_ITEM: Final = re.compile(r"(?P<name>[^\s]+)(?:\s+(?P<direction>[A-Za-z]+))?")


@dataclass(frozen=True)
class OrderKey:
    property: str
    descending: bool = False


@dataclass(frozen=True, eq=False)
class QueryOptions:
    entity: Entity
    # The compiled $filter (None without one); bound parameters only.
    where: ColumnElement[bool] | None
    filter_text: str | None
    filter_tree: ast._Node | None
    order_by: tuple[OrderKey, ...]
    skip: int
    # $top as requested (None if absent) and the number of rows this page may hold: min($top, page cap).
    top: int | None
    limit: int
    # True when the page cap, not the client's $top, bounds this page: more rows may follow (@odata.nextLink).
    capped: bool
    count: bool
    expand: frozenset[str]
    select: tuple[str, ...] | None

    def order_clauses(self) -> list[UnaryExpression[Any]]:
        """ORDER BY terms: the requested keys, then the key column; OData puts nulls first ascending, everywhere."""
        clauses: list[UnaryExpression[Any]] = []
        for key in self.order_by:
            prop = self.entity.properties[key.property]
            clause = prop.column.desc() if key.descending else prop.column.asc()
            if prop.nullable:
                clause = clause.nulls_last() if key.descending else clause.nulls_first()
            clauses.append(clause)
        if all(key.property != self.entity.key for key in self.order_by):
            clauses.append(self.entity.key_column.asc())
        return clauses

    def next_page(self, returned: int) -> tuple[int, int | None] | None:
        """($skip, $top) of the next page when the server cap cut this one, else None.

        `returned` is the number of rows this page held; a full capped page may have a successor.
        """
        if not self.capped or returned < self.limit or self.limit == 0:
            return None
        remaining = None if self.top is None else self.top - returned
        if remaining is not None and remaining <= 0:
            return None
        return self.skip + returned, remaining


def _single(params: Mapping[str, str], name: str) -> str | None:
    # A MultiDict (aiohttp's request.query) can hold an option twice; which one would win is ambiguous.
    getall = getattr(params, "getall", None)
    if callable(getall) and len(getall(name, [])) > 1:
        raise bad_request(f"{name} is given more than once")
    return params.get(name)


def _non_negative(name: str, text: str, maximum: int) -> int:
    stripped = text.strip()
    if not _NON_NEGATIVE.fullmatch(stripped):
        raise bad_request(f"{name} must be a non-negative integer, got {text!r}")
    value = int(stripped)
    if value > maximum:
        raise bad_request(f"{name} must be at most {maximum}, got {value}")
    return value


def _order_by(entity: Entity, text: str) -> tuple[OrderKey, ...]:
    keys: list[OrderKey] = []
    items = text.split(",")
    if len(items) > MAX_ORDERBY_KEYS:
        raise bad_request(f"$orderby has {len(items)} keys; the limit is {MAX_ORDERBY_KEYS}")
    for item in items:
        match = _ORDER_ITEM.fullmatch(item.strip())
        if match is None:
            raise bad_request(f"$orderby: {item.strip()!r} is not '<property> [asc|desc]'")
        name, direction = match["name"], (match["direction"] or "asc").lower()
        prop = entity.properties.get(name)
        if prop is None or not prop.sortable:
            sortable = ", ".join(sorted(n for n, p in entity.properties.items() if p.sortable))
            raise bad_request(f"$orderby: {name!r} is not a sortable property of {entity.name} (one of: {sortable})")
        if direction not in ("asc", "desc"):
            raise bad_request(f"$orderby: direction of {name} must be asc or desc, got {match['direction']!r}")
        keys.append(OrderKey(name, descending=direction == "desc"))
    return tuple(keys)


def _names(option: str, text: str, allowed: frozenset[str]) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    for name in names:
        if name not in allowed:
            raise bad_request(f"{option}: {name!r} is not supported (allowed: {', '.join(sorted(allowed))})")
    return names


def parse_query_options(
    params: Mapping[str, str],
    entity: Entity,
    page_cap: int = DEFAULT_PAGE_CAP,
    max_filter_bytes: int = MAX_FILTER_BYTES,
    max_depth: int = MAX_DEPTH,
) -> QueryOptions:
    """Validate the `$`-options of `params` for `entity`; raises `ODataError` (400) naming the first problem.

    Options without `$` are custom options, which OData lets a service ignore.
    """
    unknown = sorted(name for name in params if name.startswith("$") and name not in KNOWN_OPTIONS)
    if unknown:
        raise bad_request(f"unsupported query option {unknown[0]} (supported: {', '.join(sorted(KNOWN_OPTIONS))})")

    filter_text = _single(params, "$filter")
    where = tree = None
    if filter_text is not None:
        tree = parse_filter(filter_text, max_bytes=max_filter_bytes, max_depth=max_depth)
        where = FilterCompiler(entity, max_depth=max_depth).compile(tree)

    orderby_text = _single(params, "$orderby")
    order_by = _order_by(entity, orderby_text) if orderby_text is not None else ()

    top_text = _single(params, "$top")
    top = _non_negative("$top", top_text, MAX_SKIP) if top_text is not None else None
    skip_text = _single(params, "$skip")
    skip = _non_negative("$skip", skip_text, MAX_SKIP) if skip_text is not None else 0
    limit = page_cap if top is None else min(top, page_cap)
    capped = top is None or top > page_cap

    count_text = _single(params, "$count")
    if count_text is not None and count_text.strip().lower() not in ("true", "false"):
        raise bad_request(f"$count must be true or false, got {count_text!r}")
    count = count_text is not None and count_text.strip().lower() == "true"

    expand_text = _single(params, "$expand")
    expand = frozenset(_names("$expand", expand_text, entity.expandable)) if expand_text is not None else frozenset()
    select_text = _single(params, "$select")
    select = None
    if select_text is not None and select_text.strip() != "*":
        select = _names("$select", select_text, entity.selectable)

    format_text = _single(params, "$format")
    if format_text is not None and format_text.strip().lower() not in FORMATS:
        raise bad_request(f"$format {format_text!r} is not supported; only json is")

    return QueryOptions(
        entity=entity,
        where=where,
        filter_text=filter_text,
        filter_tree=tree,
        order_by=order_by,
        skip=skip,
        top=top,
        limit=limit,
        capped=capped,
        count=count,
        expand=expand,
        select=select,
    )

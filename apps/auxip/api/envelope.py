"""The JSON envelope of an entity collection: context, optional count, the page, and the next page's link."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from auxip.odata import QueryOptions


def collection_context(entity_set: str, options: QueryOptions) -> str:
    if options.select is None:
        return f"$metadata#{entity_set}"
    return f"$metadata#{entity_set}({','.join(options.select)})"


def next_link(request: web.Request, options: QueryOptions, returned: int) -> str | None:
    """The URL of the next page when the server's page cap cut this one (other options kept as sent)."""
    following = options.next_page(returned)
    if following is None:
        return None
    skip, top = following
    query = {key: value for key, value in request.query.items() if key not in ("$skip", "$top")}
    query["$skip"] = str(skip)
    if top is not None:
        query["$top"] = str(top)
    return str(request.url.with_query(query))


def collection(
    request: web.Request, entity_set: str, options: QueryOptions, items: Sequence[dict[str, Any]], count: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": collection_context(entity_set, options)}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = list(items)
    link = next_link(request, options, len(items))
    if link is not None:
        body["@odata.nextLink"] = link
    return body

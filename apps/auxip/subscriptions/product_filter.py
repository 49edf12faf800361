"""FilterParam -> SQL: the one place that decides how a subscription's Products `$filter` is compiled.

It is the generic OData compiler of `auxip.odata` on its Products description, so a FilterParam means exactly what
the same text means in `GET Products?$filter=...` (attribute lambdas included). The API (validation at creation)
and the matcher (evaluation) both go through here, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlalchemy import ColumnElement

from auxip.api.errors import ODataError
from auxip.odata import PRODUCTS, compile_filter, parse_filter

ProductFilterCompiler = Callable[[str], ColumnElement[bool]]

_QUERY_PREFIX: Final = "Products?$filter="


class FilterError(ValueError):
    """A FilterParam that is not a valid Products `$filter`; the message says what is wrong."""


def filter_text(filter_param: str) -> str:
    """The `$filter` expression of a FilterParam; ESA's suite may send it as `Products?$filter=<expression>`."""
    text = filter_param.strip()
    if text.startswith(_QUERY_PREFIX):
        text = text[len(_QUERY_PREFIX) :]
    if not text:
        raise FilterError("FilterParam is empty")
    return text


def compile_product_filter(filter_param: str) -> ColumnElement[bool]:
    """A boolean condition on the product table (usable in `select(Product.id).where(...)`); `FilterError` if bad."""
    try:
        return compile_filter(PRODUCTS, parse_filter(filter_text(filter_param)))
    except ODataError as exc:
        # The OData layer reports client mistakes as 400 errors; here they are a property of the stored text.
        raise FilterError(exc.message) from None

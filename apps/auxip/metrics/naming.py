"""Metric names of the ICD (contract, "Monitoring (Metrics entity set)"), assembled in SQL from grouped columns.

Names are dotted paths whose segments are product attributes or a client name. A product may lack a segment's
attribute: `S1_` files are unit-independent and carry no platformSerialIdentifier (the contract leaves it "open").
Such a segment is written `_`, the character the Sentinel-1 file naming convention itself uses for "no unit"
(`S1_`, `S1__AUX_WND_...`): every name keeps the same number of non-empty segments, so clients that split names on
`.` see a value in every position, and `_` can never be mistaken for a real unit letter (A, B, C, D).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import ColumnElement, String, func, literal

#: The segment written for an attribute a product does not have.
MISSING_SEGMENT: Final = "_"

# Attribute names of the grouping segments, in name order.
PRODUCT_TYPE: Final = "productType"
PLATFORM_SHORT_NAME: Final = "platformShortName"
PLATFORM_SERIAL_IDENTIFIER: Final = "platformSerialIdentifier"


def segment(value: ColumnElement[Any]) -> ColumnElement[str]:
    """`value`, or `MISSING_SEGMENT` where it is NULL (an absent attribute, a product row gone)."""
    return func.coalesce(value, literal(MISSING_SEGMENT, String()))


def dotted(*parts: str | ColumnElement[Any]) -> ColumnElement[str]:
    """`a || '.' || b || ...` in SQL: fixed parts are bound literals, column parts are used as they are."""
    expressions = [literal(part, String()) if isinstance(part, str) else part for part in parts]
    result = expressions[0]
    for expression in expressions[1:]:
        result = result + literal(".", String()) + expression
    return result

"""Literal values of `$filter`, converted to Python values of the EDM type they are compared with.

Every mismatch is a client mistake answered with 400 naming the property, the expected type and the literal.
DateTimeOffset literals are read here rather than with `datetime.fromisoformat` because clients send 1 to 7
fraction digits (and odata-query's lexer lets up to 12 through), while Python and both databases stop at
microseconds: the value is truncated to the microsecond and `exact` says whether anything was dropped, so the
compiler can adjust the operator instead of silently moving the bound (see `compiler._compare_datetime`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from odata_query import ast

from auxip.api.errors import ODataError, bad_request
from auxip.odata.entities import EdmType, Property
from auxip.odata.lexer import EnumLiteral, full_name

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

_DATETIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?(Z|[+\- ]\d{2}:\d{2})?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Instant:
    """A DateTimeOffset literal in UTC, truncated to the microsecond; `exact` is False if digits were dropped."""

    value: datetime
    exact: bool


def describe(node: ast._Node) -> str:
    """A short rendering of an AST node for error messages."""
    if isinstance(node, EnumLiteral):
        return f"{node.type_name}'{node.val}'"
    if isinstance(node, ast.String):
        return f"'{node.val}'"
    if isinstance(node, ast.Null):
        return "null"
    if isinstance(node, ast.List):
        return "(" + ",".join(describe(item) for item in node.val) + ")"
    if isinstance(node, ast.Identifier):
        return full_name(node)
    if isinstance(node, ast.Attribute):
        return f"{describe(node.owner)}/{node.attr}"
    value = getattr(node, "val", None)
    if isinstance(value, str):
        return value
    return type(node).__name__


def parse_instant(text: str) -> Instant:
    """Read a DateTimeOffset literal as lexed by `auxip.odata.lexer` (no offset means UTC)."""
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise bad_request(f"$filter: {text!r} is not a DateTimeOffset")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    digits = fraction or ""
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int(digits[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
        if offset and offset.upper() != "Z":
            sign = -1 if offset[0] == "-" else 1
            value -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    except (ValueError, OverflowError) as exc:
        raise bad_request(f"$filter: {text!r} is not a valid DateTimeOffset ({exc})") from None
    return Instant(value, exact=not digits[6:].strip("0"))


def _wrong(prop_name: str, prop: Property, node: ast._Node) -> ODataError:
    return bad_request(
        f"$filter: wrong literal type for {prop_name} ({prop.type.value}): {describe(node)} "
        f"is a {type(node).__name__} literal"
    )


def coerce(node: ast._Node, prop_name: str, prop: Property) -> object:
    """The Python value of literal `node` compared with property `prop` (an `Instant` for DateTimeOffset)."""
    kind = prop.type
    if kind is EdmType.STRING and isinstance(node, ast.String):
        return node.val
    if kind is EdmType.INT64 and isinstance(node, ast.Integer):
        number = int(node.val)
        if not INT64_MIN <= number <= INT64_MAX:
            raise bad_request(f"$filter: {node.val} is out of the Int64 range of {prop_name}")
        return number
    if kind is EdmType.DOUBLE and isinstance(node, ast.Integer | ast.Float):
        try:
            return float(node.val)
        except OverflowError:
            raise bad_request(f"$filter: {node.val} is out of the Double range of {prop_name}") from None
    if kind is EdmType.DATETIME and isinstance(node, ast.DateTime):
        return parse_instant(node.val)
    if kind is EdmType.DATETIME and isinstance(node, ast.Date):
        # A date compared with a DateTimeOffset means its midnight UTC.
        try:
            return Instant(datetime.fromisoformat(node.val).replace(tzinfo=UTC), exact=True)
        except ValueError:
            raise bad_request(f"$filter: {node.val!r} is not a valid date") from None
    if kind is EdmType.BOOLEAN and isinstance(node, ast.Boolean):
        return node.val.lower() == "true"
    if kind is EdmType.GUID and isinstance(node, ast.GUID | ast.String):
        try:
            return uuid.UUID(node.val)
        except ValueError:
            raise bad_request(f"$filter: {describe(node)} is not a valid Guid for {prop_name}") from None
    if kind is EdmType.ENUM and isinstance(node, EnumLiteral | ast.String):
        return _enum_member(node, prop_name, prop)
    raise _wrong(prop_name, prop, node)


def _enum_member(node: EnumLiteral | ast.String, prop_name: str, prop: Property) -> str:
    enum_type = prop.enum_type
    assert enum_type is not None  # guaranteed by Property.__post_init__
    # The qualified form is the contract's; a bare string of a known member is accepted too (OData 4.01 allows it).
    if isinstance(node, EnumLiteral) and node.type_name != enum_type.qualified_name:
        raise bad_request(
            f"$filter: {prop_name} is a {enum_type.qualified_name}, not a {node.type_name} ({describe(node)})"
        )
    if node.val not in enum_type.members:
        known = ", ".join(sorted(enum_type.members))
        raise bad_request(f"$filter: {node.val!r} is not a {enum_type.qualified_name} member (one of {known})")
    return node.val

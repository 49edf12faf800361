"""The CSC extensions of odata-query's lexer, seen through the parsed AST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from odata_query import ast
from sqlalchemy.dialects import postgresql, sqlite

from auxip.odata import PRODUCTS, parse_filter, parse_query_options
from auxip.odata.lexer import EnumLiteral
from auxip.odata.literals import Instant, parse_instant
from auxip.odata.matching import MatchKind, glob_pattern, like_pattern


def test_cast_segments_keep_their_namespace() -> None:
    tree = parse_filter("Attributes/OData.CSC.StringAttribute/any(att:att/OData.CSC.StringAttribute/Value eq 'A')")
    assert isinstance(tree, ast.CollectionLambda)
    assert tree.owner == ast.Attribute(ast.Identifier("Attributes"), "OData.CSC.StringAttribute")


def test_enum_literal() -> None:
    tree = parse_filter("Status eq OData.CSC.SubscriptionStatus'run''ning'")
    assert isinstance(tree, ast.Compare)
    assert tree.right == EnumLiteral(type_name="OData.CSC.SubscriptionStatus", val="run'ning")


def test_not_directly_followed_by_parenthesis() -> None:
    assert parse_filter("not(Name eq 'a')") == parse_filter("not (Name eq 'a')")


@pytest.mark.parametrize("spacing", ["('a')", "( 'a' )", "(  'a')"])
def test_single_item_in_list(spacing: str) -> None:
    tree = parse_filter(f"Name in {spacing}")
    assert isinstance(tree, ast.Compare)
    assert tree.right == ast.List([ast.String("a")])


def test_strings_are_not_rewritten() -> None:
    # Text inside a literal that looks like the rewritten shapes stays as it is.
    tree = parse_filter("Name eq 'not(x) in (1) OData.CSC.X''y'''")
    assert isinstance(tree, ast.Compare)
    assert tree.right == ast.String("not(x) in (1) OData.CSC.X'y'")


@pytest.mark.parametrize(
    ("text", "expected", "exact"),
    [
        ("2021-01-01T00:00:00.000Z", datetime(2021, 1, 1, tzinfo=UTC), True),
        ("2021-01-01T00:00:00Z", datetime(2021, 1, 1, tzinfo=UTC), True),
        ("2021-01-01T00:00Z", datetime(2021, 1, 1, tzinfo=UTC), True),
        ("2021-01-01T00:00:00.5Z", datetime(2021, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), True),
        ("2021-01-01T00:00:00.1234567Z", datetime(2021, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), False),
        ("2021-01-01T00:00:00.1234560Z", datetime(2021, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), True),
        ("2021-01-01T01:00:00+01:00", datetime(2021, 1, 1, tzinfo=UTC), True),
        ("2020-12-31T23:30:00-00:30", datetime(2021, 1, 1, tzinfo=UTC), True),
        ("2021-01-01T01:00:00 01:00", datetime(2021, 1, 1, tzinfo=UTC), True),
        ("2021-01-01T00:00:00", datetime(2021, 1, 1, tzinfo=UTC), True),
    ],
)
def test_datetime_forms(text: str, expected: datetime, exact: bool) -> None:
    tree = parse_filter(f"PublicationDate gt {text}")
    assert isinstance(tree, ast.Compare)
    assert tree.right == ast.DateTime(text)
    assert parse_instant(text) == Instant(expected, exact)


def test_patterns_escape_wildcards() -> None:
    assert like_pattern(MatchKind.CONTAINS, "a%b_c\\") == "%a\\%b\\_c\\\\%"
    assert glob_pattern(MatchKind.STARTSWITH, "a*b?c[d]") == "a[*]b[?]c[[]d]*"
    assert glob_pattern(MatchKind.ENDSWITH, "x") == "*x"


def test_sql_uses_bound_parameters_only() -> None:
    evil = "x'; DROP TABLE product; --"
    quoted = evil.replace("'", "''")
    options = parse_query_options({"$filter": f"Name eq '{quoted}' or contains(Name,'{quoted}')"}, PRODUCTS)
    assert options.where is not None
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = str(options.where.compile(dialect=dialect))
        assert "DROP" not in sql
        assert evil in options.where.compile(dialect=dialect).params.values()


def test_long_flat_chains_do_not_recurse() -> None:
    text = " or ".join(f"ContentLength eq {i}" for i in range(250))
    options = parse_query_options({"$filter": text}, PRODUCTS)
    assert options.where is not None

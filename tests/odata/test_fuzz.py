"""Property test: any $filter text is either a select that runs on SQLite, or an ODataError 400. Nothing else.

Inputs come from two sources: a small generator of the contract's grammar (valid and invalid pieces mixed), and
random mutations (cut, insert, duplicate, swap) of those and of every filter of the result-set tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy.orm import Session

from auxip.api.errors import ODataError
from auxip.odata import PRODUCTS, parse_query_options, products_select

from .conftest import Catalog, build_catalog
from .test_products_filters import CASES

# Hypothesis writes caches under ./.hypothesis even without an example database, as soon as the module is imported
# and tests run; keep them out of the repository (at import time: a fixture would come too late).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "auxip-odata-hypothesis")

# database=None: no example database written into the repository; every run explores afresh.
SETTINGS = settings(
    max_examples=1500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

PROPERTIES = [
    "Name", "Id", "ContentLength", "PublicationDate", "OriginDate", "EvictionDate", "ContentDate/Start",
    "ContentDate/End", "ContentType", "Foo", "ContentDate", "Attributes", "Checksum",
]  # fmt: skip
LITERALS = [
    "'S1A'", "''", "'it''s'", "'%_*?['", "0", "-1", "9223372036854775807", "9223372036854775808", "1.5", "1e400",
    "-1e3", "true", "false", "null", "2021-01-01T00:00:00.000Z", "2021-01-01T00:00:00Z", "2021-01-01T00:00:00.1234567Z",
    "2021-01-01T00:00:00+00:00", "2021-01-01T00:00:00 00:00", "2021-01-01", "2021-13-01", "2021-02-30T00:00:00Z",
    "9999-12-31T23:59:59-05:00", "1000-01-01T00:00:00+05:00", "12:00:00", "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "duration'P1D'", "geography'POINT(0 0)'", "OData.CSC.SubscriptionStatus'running'", "X.Y'z'",
]  # fmt: skip
OPERATORS = ["eq", "ne", "gt", "ge", "lt", "le", "add", "in", "has"]
CASTS = ["String", "Integer", "Double", "DateTimeOffset", "Boolean", "Foo"]
FUNCTIONS = ["contains", "startswith", "endswith", "tolower", "length", "substring", "year", "now", "foo"]

literals = st.sampled_from(LITERALS)
lists = st.lists(literals, min_size=1, max_size=4).map(lambda items: "(" + ",".join(items) + ")")


def _comparison(prop: str, op: str, value: str) -> str:
    return f"{prop} {op} {value}"


# Well-typed pieces, so that a good share of the generated filters compile and run (not only the error paths).
TYPED = {
    "Name": ["'S1A'", "'S1A_AUX_CAL_V20140908T000000_G20190626T100201.SAFE.zip'", "'it''s'", "'%_*?['"],
    "ContentLength": ["0", "1000", "-1", "9223372036854775807"],
    "PublicationDate": ["2021-01-01T00:00:00.000Z", "2030-01-01T00:00:00.1234567+01:00", "2021-01-01"],
    "ContentDate/End": ["2021-01-02T00:00:00Z", "null"],
    "ContentDate/Start": ["2016-04-23T12:00:00.000Z"],
    "Id": ["3fa85f64-5717-4562-b3fc-2c963f66afa6"],
}
CAST_VALUES = {
    "String": ("productType", ["'AUX_WND'", "'AUX_POEORB'", "('AUX_CAL','AUX_WAV')"]),
    "Integer": ("orbitNumber", ["35000", "24000", "(24000,35001)"]),
    "Double": ("dataCoverage", ["99.5", "-1.5", "100"]),
    "DateTimeOffset": ("processingDate", ["2021-01-01T12:00:00.000Z", "2021-01-01T00:00:00.1234567Z"]),
    "Boolean": ("reprocessed", ["true", "false"]),
}
typed_comparisons = st.sampled_from(sorted(TYPED)).flatmap(
    lambda prop: st.builds(
        _comparison,
        st.just(prop),
        st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]),
        st.sampled_from(TYPED[prop]),
    )
)
typed_lambdas = st.sampled_from(sorted(CAST_VALUES)).flatmap(
    lambda cast: st.builds(
        lambda op, value: (
            f"Attributes/OData.CSC.{cast}Attribute/any(att:att/Name eq '{CAST_VALUES[cast][0]}' and "
            f"att/OData.CSC.{cast}Attribute/Value {'in' if value.startswith('(') else op} {value})"
        ),
        st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]),
        st.sampled_from(CAST_VALUES[cast][1]),
    )
)
string_calls = st.builds(
    lambda f, text: f"{f}(Name,{text})",
    st.sampled_from(["contains", "startswith", "endswith"]),
    st.sampled_from(TYPED["Name"]),
)
comparisons = st.builds(_comparison, st.sampled_from(PROPERTIES), st.sampled_from(OPERATORS), literals | lists)
calls = st.builds(
    lambda f, args: f"{f}({','.join(args)})",
    st.sampled_from(FUNCTIONS),
    st.lists(st.sampled_from(PROPERTIES) | literals, max_size=3),
)
lambda_bodies = st.builds(
    lambda var, cast, op, value, name: f"{var}/Name eq '{name}' and {var}/OData.CSC.{cast}Attribute/Value {op} {value}",
    st.sampled_from(["att", "a", "x"]),
    st.sampled_from(CASTS),
    st.sampled_from(OPERATORS),
    literals | lists,
    st.sampled_from(["productType", "orbitNumber", "dataCoverage", "processingDate", "reprocessed"]),
)
lambdas = st.builds(
    lambda cast, quantifier, var, body: f"Attributes/OData.CSC.{cast}Attribute/{quantifier}({var}:{body})",
    st.sampled_from(CASTS),
    st.sampled_from(["any", "all"]),
    st.sampled_from(["att", "a"]),
    lambda_bodies,
)
conditions = st.recursive(
    typed_comparisons | typed_lambdas | string_calls | comparisons | calls | lambdas,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"not({a})", inner),
        st.builds(lambda a: f"({a})", inner),
    ),
    max_leaves=8,
)

SEEDS = [case[0] for case in CASES]
ALPHABET = st.sampled_from([*"()'/,:. -+eqandortZT0123456789_%*?[]\\\"", "\x00", "é", "\ud800", " and ", " eq "])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS) | conditions)
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 12)))
        action = draw(st.sampled_from(["cut", "insert", "duplicate", "swap"]))
        if action == "cut":
            text = text[:i] + text[j:]
        elif action == "insert":
            text = text[:i] + "".join(draw(st.lists(ALPHABET, min_size=1, max_size=4))) + text[i:]
        elif action == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            k = draw(st.integers(0, len(text) - 1))
            text = text[:i] + text[k:] + text[i:k] if i < k else text[k:i] + text[:k] + text[i:]
    return text


@pytest.fixture(scope="module")
def sqlite_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "catalog.db"
    built = build_catalog(f"sqlite:///{path}")
    yield built
    built.engine.dispose()


def _check(catalog: Catalog, text: str) -> None:
    try:
        options = parse_query_options({"$filter": text, "$count": "true"}, PRODUCTS)
    except ODataError as exc:
        error = exc
    else:
        error = None
    if error is not None:
        assert (error.status, error.code) == (400, "BadRequest")
        assert error.message.startswith("$filter")
        event("400")
        return
    page, count = products_select(options)
    assert count is not None
    with Session(catalog.engine) as session:
        rows = session.execute(page).all()
        assert session.execute(count).scalar_one() == len(rows)
    event("executed, some rows" if rows else "executed, no rows")


@SETTINGS
@given(text=conditions)
def test_generated_filters(sqlite_catalog: Catalog, text: str) -> None:
    _check(sqlite_catalog, text)


@SETTINGS
@given(text=mutated())
def test_mutated_filters(sqlite_catalog: Catalog, text: str) -> None:
    _check(sqlite_catalog, text)


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_arbitrary_text(sqlite_catalog: Catalog, text: str) -> None:
    _check(sqlite_catalog, text)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=conditions | mutated())
def test_filters_on_every_backend(catalog: Catalog, text: str) -> None:
    """Fewer examples, but on PostgreSQL too: its stricter types would surface literals SQLite lets through."""
    _check(catalog, text)

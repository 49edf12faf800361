"""Hypothesis fuzzing of `GET /Products` over HTTP: whatever the query string, the answer is 200 or 400, never 5xx,
and every 400 carries the OData error body `{"error":{"code","message"}}`.

Queries come from a grammar of the contract's filter language (properties, operators, literals of every type,
string functions, attribute lambdas, nesting) mixed with mutations (truncation, inserted garbage and unicode, huge
numbers, duplicated options) and random values for the other options. The run is bounded in examples and the
server is the session's live one (SQLite: 1500 examples, PostgreSQL: 300).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

PROPERTIES = ["Name", "Id", "PublicationDate", "OriginDate", "EvictionDate", "ContentLength", "ContentDate/Start",
              "ContentDate/End", "ContentType", "Checksum", "Attributes", "NoSuch", "ContentDate", "name"]  # fmt: skip
OPERATORS = ["eq", "ne", "gt", "ge", "lt", "le", "in", "has", "add", "EQ", "=="]
ATTRIBUTE_TYPES = ["String", "Integer", "Double", "DateTimeOffset", "Boolean", "Bogus"]
# aiohttp refuses request lines longer than this (its default max_line_size) with its own 400.
AIOHTTP_MAX_LINE = 8190
HUGE = ["9" * 40, "-9" * 20, "1e309", "NaN", "INF", "-0", "2" * 19, str(2**63), str(2**64)]

strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
string_literal = strings.map(lambda s: "'" + s.replace("'", "''") + "'")
datetime_literal = st.sampled_from(
    ["2021-01-01T00:00:00.000Z", "2021-01-01T00:00:00Z", "2021-01-01T00:00:00.1234567Z", "2021-01-01T00:00:00+00:00",
     "2021-02-30T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2021-01-01", "'2021-01-01T00:00:00Z'",
     "2021-01-01T25:00:00Z", "10000-01-01T00:00:00Z"]
)  # fmt: skip
number_literal = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(repr), st.sampled_from(HUGE))
literal = st.one_of(
    string_literal,
    datetime_literal,
    number_literal,
    st.sampled_from(
        ["true", "false", "null", "00000000-0000-0000-0000-000000000000", "OData.CSC.SubscriptionStatus'running'"]
    ),
    st.lists(string_literal, max_size=3).map(lambda items: "(" + ",".join(items) + ")"),
)


def comparison(prop: str, op: str, value: str) -> str:
    return f"{prop} {op} {value}"


leaf = st.one_of(
    st.builds(comparison, st.sampled_from(PROPERTIES), st.sampled_from(OPERATORS), literal),
    st.builds(
        lambda fn, prop, value: f"{fn}({prop},{value})",
        st.sampled_from(["startswith", "endswith", "contains", "substringof", "length", "tolower"]),
        st.sampled_from(PROPERTIES),
        literal,
    ),
    st.builds(
        lambda t1, var, name, t2, op, value: (
            f"Attributes/OData.CSC.{t1}Attribute/any({var}:{var}/Name eq {name} and "
            f"{var}/OData.CSC.{t2}Attribute/Value {op} {value})"
        ),
        st.sampled_from(ATTRIBUTE_TYPES),
        st.sampled_from(["att", "a", "x_1", "1bad", ""]),
        string_literal,
        st.sampled_from(ATTRIBUTE_TYPES),
        st.sampled_from(OPERATORS),
        literal,
    ),
    st.sampled_from(["true", "false", "not", "()", "(", ")", "any()", "Attributes/any()", "''", "'", "$it"]),
)
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or", "AND", "xor"]), inner),
        inner.map(lambda a: f"not {a}"),
        inner.map(lambda a: f"({a})"),
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw, base):
    text = draw(base)
    action = draw(st.sampled_from(["keep", "truncate", "insert", "deep"]))
    if action == "truncate" and text:
        return text[: draw(st.integers(0, len(text)))]
    if action == "insert":
        position = draw(st.integers(0, len(text)))
        junk = draw(st.one_of(strings, st.sampled_from(["\x00", "%", "%zz", "&", "=", "#", "\u202e", "😀", "\\", "/"])))
        return text[:position] + junk + text[position:]
    if action == "deep":
        depth = draw(st.integers(50, 400))
        return "(" * depth + text + ")" * depth
    return text


option_values = {
    "$filter": mutated(filters),
    "$orderby": st.one_of(
        st.lists(
            st.builds(
                lambda p, d: f"{p}{d}", st.sampled_from(PROPERTIES), st.sampled_from(["", " asc", " desc", " up"])
            ),
            min_size=1,
            max_size=3,
        ).map(",".join),
        strings,
    ),
    "$top": st.one_of(st.integers(-5, 2**70).map(str), st.sampled_from([*HUGE, "", "1.5", "abc", " 10"])),
    "$skip": st.one_of(st.integers(-5, 2**70).map(str), st.sampled_from([*HUGE, "", "x"])),
    "$count": st.sampled_from(["true", "false", "TRUE", "1", "", "yes"]),
    "$expand": st.sampled_from(["Attributes", "attributes", "Checksum", "Attributes,Attributes", "*", "", "Nope"]),
    "$select": st.one_of(st.lists(st.sampled_from([*PROPERTIES, "*", ""]), max_size=4).map(",".join), strings),
    "$format": st.sampled_from(["json", "JSON", "application/json", "xml", "atom", ""]),
    "$search": strings,
    "custom": strings,
}


@st.composite
def query_strings(draw) -> str:
    names = draw(st.lists(st.sampled_from(sorted(option_values)), max_size=6))  # repeats = duplicated options
    parts = [f"{quote(name, safe='$')}={quote(draw(option_values[name]), safe='')}" for name in names]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["$filter", "=", "&&", "$top=1&$top=2", "%", "$filter=%ff%fe", "a=b=c"])))
    return "&".join(parts)


def check(catalog, query: str) -> None:
    response = catalog.http.get(f"{catalog.products_url}?{query}", timeout=30)
    assert response.status_code in (200, 400), (query, response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 400:
        assert isinstance(body["error"]["code"], str), query
        assert isinstance(body["error"]["message"], str), query
    else:
        assert isinstance(body["value"], list), query


def run(catalog, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(query_strings())
    def fuzz(query: str) -> None:
        check(catalog, query)

    fuzz()


def test_fuzz_sqlite_never_5xx(sqlite_catalog) -> None:
    run(sqlite_catalog, 1500)


def test_fuzz_postgres_never_5xx(postgres_catalog) -> None:
    run(postgres_catalog, 300)


@pytest.mark.parametrize(
    "query",
    [
        "$filter=" + "(" * 5000 + "true" + ")" * 5000,
        "$filter=" + quote("Name eq '" + "x" * 100_000 + "'"),
        "$top=" + "9" * 1000,
        "$skip=" + "9" * 1000 + "&$top=1",
        "$filter=" + quote(" and ".join(["Name eq 'a'"] * 2000)),
    ],
)
def test_extreme_inputs_are_400_or_200(catalog, query: str) -> None:
    url = f"{catalog.products_url}?{query}"
    response = catalog.http.get(url, timeout=60)
    assert response.status_code in (200, 400, 414, 431), response.status_code
    if len(url) > AIOHTTP_MAX_LINE:
        # Rejected by aiohttp's HTTP parser before the app runs: a 400 with a plain-text body (see the report).
        assert response.status_code == 400
    elif response.status_code == 400:
        assert set(response.json()["error"]) >= {"code", "message"}

"""Every query shape of the contract ("How downloaders use it"), over HTTP, with asserted result sets.

Runs on SQLite and on a fresh PostgreSQL database (the `catalog` fixture is parametrised); the catalog content and the
expected answers are described in conftest.py.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.integration

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["Name"] for item in response.json()["value"]]


def assert_odata_error(response, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]


def test_polling_with_skip_pages_through_everything_in_publication_order(catalog) -> None:
    # The ICD polling loop: a fixed filter, $top=1000 and a growing $skip; the catalog has 1110 visible products.
    expected = [r.name for r in catalog.bulk] + [p.name for p in catalog.fixed]
    seen: list[str] = []
    skip = 0
    while True:
        query = (
            f"$filter=PublicationDate gt 2000-01-01T00:00:00.000Z&$orderby=PublicationDate asc&$top=1000&$skip={skip}"
        )
        page = names(catalog.get(query))
        seen += page
        skip += len(page)
        if len(page) < 1000:
            break
    assert seen == expected


def test_polling_from_a_fixed_product_returns_exactly_the_later_ones(catalog) -> None:
    # `gt <last seen>` with the last seen value as rendered (ms). Fixed products are published one by one with
    # storage I/O in between, so the expectation is computed with the same ms truncation the client suffers.
    pivot = catalog.fixed[3]
    boundary = catalog.floor_ms(pivot.publication_date)
    query = (
        f"$filter=PublicationDate gt {catalog.odata_ms(pivot.publication_date)}&$orderby=PublicationDate asc&$top=1000"
    )
    expected = [p.name for p in catalog.fixed if p.publication_date > boundary]
    assert names(catalog.get(query)) == expected
    assert pivot.name not in expected or pivot.publication_date > boundary


def test_ge_lt_window_with_top_500(catalog) -> None:
    low, high = catalog.fixed[2].publication_date, catalog.fixed[7].publication_date
    query = (
        f"$filter=PublicationDate ge {catalog.odata_ms(low)} and PublicationDate lt {catalog.odata_ms(high)}"
        "&$orderby=PublicationDate asc&$top=500"
    )
    lo, hi = catalog.floor_ms(low), catalog.floor_ms(high)
    expected = [p.name for p in catalog.fixed if lo <= p.publication_date < hi]
    assert catalog.fixed[2].name in expected
    assert names(catalog.get(query)) == expected


def test_startswith_alternatives_and_count(catalog) -> None:
    query = (
        "$filter=PublicationDate gt 2021-01-01T00:00:00Z and (startswith(Name,'S1A') or startswith(Name,'S1B'))"
        "&$orderby=PublicationDate asc&$top=1000&$count=true"
    )
    response = catalog.get(query)
    expected = [p.name for p in catalog.fixed if p.name.startswith(("S1A", "S1B"))]
    assert names(response) == expected
    assert len(expected) == 7
    body = response.json()
    assert body["@odata.count"] == len(expected)
    assert isinstance(body["@odata.count"], int)
    assert "@odata.nextLink" not in body
    assert body["@odata.context"] == "$metadata#Products"


def test_count_counts_all_matches_not_the_page(catalog) -> None:
    response = catalog.get(f"$filter=startswith(Name,'{catalog.bulk[0].name[:11]}')&$count=true&$top=3")
    assert len(response.json()["value"]) == 3
    assert response.json()["@odata.count"] == len(catalog.bulk)


def test_operator_listing_desc_with_content_date_window(catalog) -> None:
    # ContentDate window [2021-03-01T00:00, 2021-03-02T00:00): products valid at some point that day.
    query = (
        "$filter=(startswith(Name,'S1A') or startswith(Name,'S1B') or startswith(Name,'S1_'))"
        " and ContentDate/Start lt 2021-03-02T00:00:00.000Z and ContentDate/End gt 2021-03-01T00:00:00.000Z"
        "&$orderby=PublicationDate desc&$top=100"
    )
    window_start, window_end = datetime(2021, 3, 1, tzinfo=UTC), datetime(2021, 3, 2, tzinfo=UTC)
    expected = [
        p.name
        for p in reversed(catalog.fixed)
        if p.name.startswith(("S1A", "S1B", "S1_"))
        and p.record.content_date_start < window_end
        # An open-ended validity (AUX_CAL) is rendered and filtered as the far-future OPEN_END.
        and (p.record.content_date_end is None or p.record.content_date_end > window_start)
    ]
    assert names(catalog.get(query)) == expected
    assert "S1A_AUX_CAL_V20210301T000000_G20210228T100000.SAFE.zip" in expected
    assert not any(n.startswith("S1C") for n in expected)


@pytest.mark.parametrize(
    ("lambda_filter", "expected_types"),
    [
        (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType'"
            " and att/OData.CSC.StringAttribute/Value eq 'AUX_POEORB')",
            {"AUX_POEORB"},
        ),
        (
            "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'productType'"
            " and a/OData.CSC.StringAttribute/Value in ('AUX_WND','AUX_CAL'))",
            {"AUX_WND", "AUX_CAL"},
        ),
    ],
)
def test_attribute_string_lambdas(catalog, lambda_filter: str, expected_types: set[str]) -> None:
    expected = sorted(p.name for p in catalog.fixed if p.record.attributes["productType"] in expected_types)
    assert sorted(names(catalog.get(f"$filter={lambda_filter}"))) == expected


def test_attribute_integer_lambda_combined_with_string_lambda(catalog) -> None:
    query = (
        "$filter=Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'orbitNumber'"
        " and att/OData.CSC.IntegerAttribute/Value ge 36030)"
        " and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'platformSerialIdentifier'"
        " and att/OData.CSC.StringAttribute/Value eq 'B')"
    )
    expected = sorted(
        p.name
        for p in catalog.fixed
        if p.record.attributes.get("orbitNumber", 0) >= 36030
        and p.record.attributes.get("platformSerialIdentifier") == "B"
    )
    assert expected  # S1B POEORB (day 01) and S1B RESORB (day 02)
    assert sorted(names(catalog.get(query))) == expected


def test_expand_attributes_shape_and_typed_values(catalog) -> None:
    product = catalog.fixed[0]
    response = catalog.get(f"$filter=Name eq '{product.name}'&$expand=Attributes")
    (item,) = response.json()["value"]
    attributes = {a["Name"]: a for a in item["Attributes"]}
    assert set(attributes) == set(product.record.attributes)
    for attribute in attributes.values():
        assert attribute["@odata.type"] == f"#OData.CSC.{attribute['ValueType']}Attribute"
    assert attributes["productType"]["ValueType"] == "String"
    assert attributes["productType"]["Value"] == "AUX_POEORB"
    assert attributes["orbitNumber"]["ValueType"] == "Integer"
    assert attributes["orbitNumber"]["Value"] == product.record.attributes["orbitNumber"]
    assert type(attributes["orbitNumber"]["Value"]) is int  # a JSON number, not a string
    assert attributes["beginningDateTime"]["ValueType"] == "DateTimeOffset"
    assert attributes["beginningDateTime"]["Value"] == "2021-02-28T22:59:42.000Z"
    # Without $expand, no Attributes.
    plain = catalog.get(f"$filter=Name eq '{product.name}'").json()["value"][0]
    assert "Attributes" not in plain


def test_product_entity_properties(catalog) -> None:
    product = catalog.fixed[7]  # open-ended AUX_CAL
    (item,) = catalog.get(f"$filter=Id eq {product.id}").json()["value"]
    assert item["Id"] == str(product.id)
    assert item["Name"] == product.name
    assert item["ContentLength"] == len(product.data)
    assert type(item["ContentLength"]) is int
    assert item["PublicationDate"] == catalog.odata_ms(product.publication_date)
    for key in ("OriginDate", "PublicationDate", "EvictionDate"):
        assert TIMESTAMP.match(item[key]), item[key]
    assert {"Algorithm": "MD5", "Value": product.md5} == {
        k: v for k, v in item["Checksum"][0].items() if k != "ChecksumDate"
    }
    assert item["ContentDate"]["Start"] == "2021-03-01T00:00:00.000Z"
    assert TIMESTAMP.match(item["ContentDate"]["End"])
    assert item["@odata.mediaContentType"] == item["ContentType"] == "application/octet-stream"


def test_select_limits_properties(catalog) -> None:
    response = catalog.get("$filter=startswith(Name,'S1C')&$select=Name,ContentLength")
    body = response.json()
    assert body["@odata.context"] == "$metadata#Products(Name,ContentLength)"
    (item,) = body["value"]
    assert set(item) - {"@odata.mediaContentType"} == {"Id", "Name", "ContentLength"}
    assert item["Name"] == catalog.fixed[2].name


@pytest.mark.parametrize("form", ["bare", "quoted"])
def test_single_product_by_key(catalog, form: str) -> None:
    product = catalog.fixed[1]
    key = str(product.id) if form == "bare" else f"'{product.id}'"
    response = catalog.get(path=f"/Products({key})")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == "$metadata#Products/$entity"
    assert body["Id"] == str(product.id)
    assert body["Name"] == product.name
    assert body["ContentLength"] == len(product.data)
    assert "Attributes" not in body
    expanded = catalog.get("$expand=Attributes", path=f"/Products({key})").json()
    assert {a["Name"] for a in expanded["Attributes"]} == set(product.record.attributes)


@pytest.mark.parametrize("which", ["unknown", "evicted"])
def test_unknown_or_evicted_product_is_404_with_odata_body(catalog, which: str) -> None:
    product_id = uuid.uuid4() if which == "unknown" else catalog.evicted.id
    assert_odata_error(catalog.get(path=f"/Products({product_id})"), 404)
    assert_odata_error(catalog.get(path=f"/Products({product_id})/$value"), 404)


def test_evicted_product_is_not_listed(catalog) -> None:
    assert names(catalog.get(f"$filter=Name eq '{catalog.evicted.name}'")) == []
    assert names(catalog.get(f"$filter=Id eq {catalog.evicted.id}")) == []


def test_next_link_when_top_exceeds_the_cap_and_following_it_yields_the_rest_once(catalog) -> None:
    cap = catalog.server.config.api.max_page_size
    assert cap == 1000
    prefix = catalog.bulk[0].name[:11]
    url = f"{catalog.products_url}?$filter=startswith(Name,'{prefix}')&$orderby=PublicationDate asc&$top=1500"
    seen: list[str] = []
    pages = 0
    while url:
        response = catalog.http.get(url, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["Name"] for item in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
        assert pages <= 3
    assert pages == 2
    assert len(seen) == len(set(seen)) == len(catalog.bulk)
    assert seen == [r.name for r in catalog.bulk]


def test_next_link_without_top_and_no_link_on_a_short_page(catalog) -> None:
    prefix = catalog.bulk[0].name[:11]
    body = catalog.get(f"$filter=startswith(Name,'{prefix}')&$orderby=PublicationDate asc").json()
    assert len(body["value"]) == 1000
    # The link carries the same options plus the next $skip (percent-encoded; parse it as a client would).
    link = parse_qs(urlsplit(body["@odata.nextLink"]).query)
    assert link["$skip"] == ["1000"]
    assert link["$filter"] == [f"startswith(Name,'{prefix}')"]
    assert link["$orderby"] == ["PublicationDate asc"]
    rest = catalog.http.get(body["@odata.nextLink"], timeout=30).json()
    assert [i["Name"] for i in rest["value"]] == [r.name for r in catalog.bulk[1000:]]
    assert "@odata.nextLink" not in rest
    # An explicit $top within the cap is honoured without a link, even when more rows exist.
    assert "@odata.nextLink" not in catalog.get(f"$filter=startswith(Name,'{prefix}')&$top=10").json()


def test_empty_match_is_200_and_bad_filter_is_400(catalog) -> None:
    assert names(catalog.get("$filter=Name eq 'nothing-like-this'")) == []
    assert_odata_error(catalog.get("$filter=NoSuchProperty eq 1"), 400)
    assert_odata_error(catalog.get("$filter=Name eq"), 400)
    assert_odata_error(catalog.get("$filter=PublicationDate gt 2021-13-45T00:00:00Z"), 400)


@pytest.mark.parametrize(
    "literal",
    ["2021-03-01T00:00:00.000Z", "2021-03-01T00:00:00Z", "2021-03-01T00:00:00.1234567Z", "2021-03-01T00:00:00+00:00"],
)
def test_datetime_literal_forms(catalog, literal: str) -> None:
    query = f"$filter=ContentDate/Start ge {literal} and startswith(Name,'S1A')&$orderby=PublicationDate asc"
    boundary = datetime(2021, 3, 1, tzinfo=UTC)
    expected = [p.name for p in catalog.fixed if p.name.startswith("S1A") and p.record.content_date_start >= boundary]
    if literal.endswith(".1234567Z"):
        expected = [
            p.name
            for p in catalog.fixed
            if p.name.startswith("S1A") and p.record.content_date_start > boundary.replace(microsecond=123456)
        ]
    assert names(catalog.get(query.replace("+", "%2B"))) == expected

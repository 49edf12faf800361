"""$orderby (ties broken by Id), $skip/$top paging, the server page cap, $count and $expand on Products."""

from __future__ import annotations

from sqlalchemy.orm import Session

from auxip.catalog.views import load_product_views
from auxip.odata import PRODUCTS, parse_query_options, products_select

from .conftest import CATALOG, Catalog

VISIBLE = ["POE", "RES", "CAL", "WND", "PRE", "WAV", "wav"]


def _by_id(catalog: Catalog, keys: list[str]) -> list[str]:
    # Both backends order UUIDs by their 128-bit value (SQLite: the 32-digit hex text; PostgreSQL: bytes).
    return sorted(keys, key=lambda key: catalog.ids[key].int)


def test_default_order_is_by_id(catalog: Catalog) -> None:
    assert catalog.query({})[0] == _by_id(catalog, VISIBLE)


def test_orderby_publication_date(catalog: Catalog) -> None:
    assert catalog.query({"$orderby": "PublicationDate"})[0] == VISIBLE
    assert catalog.query({"$orderby": "PublicationDate asc"})[0] == VISIBLE
    assert catalog.query({"$orderby": "PublicationDate desc"})[0] == VISIBLE[::-1]


def test_orderby_desc_with_ties_is_stable_by_id(catalog: Catalog) -> None:
    expected = ["WAV", "CAL", *_by_id(catalog, ["RES", "WND"]), *_by_id(catalog, ["POE", "PRE"]), "wav"]
    assert catalog.query({"$orderby": "ContentLength desc"})[0] == expected


def test_orderby_several_keys(catalog: Catalog) -> None:
    # Ties on ContentLength broken by Name descending (S1__ < S1B_ in byte order, so S1B first).
    assert catalog.query({"$orderby": "ContentLength asc,Name desc"})[0] == [
        "wav",
        "PRE",
        "POE",
        "WND",
        "RES",
        "CAL",
        "WAV",
    ]
    assert catalog.query({"$orderby": "ContentLength  desc , Name asc"})[0] == [
        "WAV",
        "CAL",
        "RES",
        "WND",
        "POE",
        "PRE",
        "wav",
    ]


def test_orderby_open_ended_validity_sorts_as_the_end_of_time(catalog: Catalog) -> None:
    open_ended = _by_id(catalog, ["CAL", "WND"])
    assert catalog.query({"$orderby": "ContentDate/End asc"})[0] == ["RES", "WAV", "POE", "wav", "PRE", *open_ended]
    # Ties (both open-ended) still break on Id ascending, whatever the direction of the key.
    assert catalog.query({"$orderby": "ContentDate/End desc"})[0] == [*open_ended, "PRE", "wav", "POE", "WAV", "RES"]


def test_orderby_with_filter(catalog: Catalog) -> None:
    params = {"$filter": "contains(Name,'_AUX_') or contains(Name,'_AX_')", "$orderby": "PublicationDate desc"}
    assert catalog.query(params)[0] == ["WAV", "WND", "CAL", "RES", "POE"]


def test_skip_then_top(catalog: Catalog) -> None:
    def page(skip: int, top: int) -> list[str]:
        return catalog.query({"$orderby": "PublicationDate asc", "$skip": str(skip), "$top": str(top)})[0]

    assert page(0, 2) == ["POE", "RES"]
    assert page(2, 2) == ["CAL", "WND"]
    assert page(6, 5) == ["wav"]
    assert page(7, 5) == []
    assert page(0, 0) == []
    # The conformance suite's $skip and $top with startswith.
    assert catalog.query({"$skip": "1", "$filter": "startswith(Name,'S1A')", "$orderby": "PublicationDate"})[0] == [
        "CAL",
        "PRE",
    ]
    assert catalog.query({"$top": "1", "$filter": "startswith(Name,'S1A')", "$orderby": "PublicationDate"})[0] == [
        "POE"
    ]


def test_top_is_capped_by_the_server(catalog: Catalog) -> None:
    options = parse_query_options({"$top": "5", "$orderby": "PublicationDate"}, PRODUCTS, page_cap=3)
    assert (options.top, options.limit, options.capped) == (5, 3, True)
    assert catalog.query({"$top": "5", "$orderby": "PublicationDate"}, page_cap=3)[0] == ["POE", "RES", "CAL"]
    assert options.next_page(3) == (3, 2)
    assert options.next_page(2) is None  # a short page is the last one

    uncapped = parse_query_options({"$top": "2"}, PRODUCTS, page_cap=3)
    assert (uncapped.limit, uncapped.capped, uncapped.next_page(2)) == (2, False, None)

    no_top = parse_query_options({}, PRODUCTS)
    assert (no_top.top, no_top.limit, no_top.capped) == (None, 1000, True)
    assert no_top.next_page(1000) == (1000, None)


def test_walking_capped_pages_visits_every_product_once(catalog: Catalog) -> None:
    """Follow next_page with a cap of 2 under an order full of ties: every product exactly once, in order."""
    params = {"$orderby": "ContentLength desc"}
    seen: list[str] = []
    skip, top = 0, None
    while True:
        page_params = {**params, "$skip": str(skip)} | ({"$top": str(top)} if top is not None else {})
        options = parse_query_options(page_params, PRODUCTS, page_cap=2)
        keys = catalog.query(page_params, page_cap=2)[0]
        seen.extend(keys)
        following = options.next_page(len(keys))
        if following is None:
            break
        skip, top = following
    assert seen == catalog.query(params)[0]
    assert sorted(seen) == sorted(VISIBLE)


def test_count_ignores_paging_and_evicted(catalog: Catalog) -> None:
    keys, count = catalog.query({"$count": "true", "$filter": "startswith(Name,'S1A')", "$top": "1"})
    assert len(keys) == 1
    assert count == 3  # POE, CAL, PRE; the evicted S1A orbit is not counted
    assert catalog.query({"$count": "true"})[1] == 7
    assert catalog.query({"$count": "false"})[1] is None
    assert catalog.query({"$count": "true", "$filter": "Name eq 'nothing'"}) == ([], 0)


def test_expand_attributes_loads_them(catalog: Catalog) -> None:
    params = {
        "$filter": "contains(Name,'_AUX_') and ContentDate/Start ge 2021-01-01T00:00:00.000Z",
        "$expand": "Attributes",
        "$format": "json",
        "$top": "100",
        "$orderby": "PublicationDate",
    }
    page, _ = products_select(parse_query_options(params, PRODUCTS))
    with Session(catalog.engine) as session:
        products = load_product_views(session, page, attributes=True)
        got = {product.name: {a.name: a.value for a in product.attributes} for product in products}
    assert got == {CATALOG[key].name: dict(CATALOG[key].attributes) for key in ("RES", "WAV")}


def test_select_is_validated_and_kept(catalog: Catalog) -> None:
    options = parse_query_options({"$select": "Name, Id,ContentDate"}, PRODUCTS)
    assert options.select == ("Name", "Id", "ContentDate")
    assert parse_query_options({"$select": "*"}, PRODUCTS).select is None

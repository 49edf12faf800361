"""A generic OData v4 client (python-odata, `odata` on PyPI) reflects the service from `$metadata` and queries it.

It knows nothing about the AUXIP: everything it does is derived from the CSDL, so this checks that the document is
consumable as published and that the entity set answers the queries such a client generates.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

odata = pytest.importorskip("odata")


@pytest.fixture(scope="module")
def service(sqlite_catalog):
    from odata import ODataService

    return ODataService(f"{sqlite_catalog.server.service_root}/", reflect_entities=True, session=sqlite_catalog.http)


def test_products_entity_set_and_types_are_discovered(service) -> None:
    assert {"Products", "Subscriptions", "Metrics"} <= set(service.entities)
    schema = service.entities["Products"].__odata_schema__
    assert schema["type"] == "OData.CSC.Product"
    properties = {p["name"]: p for p in schema["properties"]}
    assert properties["Id"]["type"] == "Edm.Guid"
    assert properties["Id"]["is_primary_key"] is True
    assert [n for n, p in properties.items() if p["is_primary_key"]] == ["Id"]
    assert properties["ContentLength"]["type"] == "Edm.Int64"
    assert properties["PublicationDate"]["type"] == "Edm.DateTimeOffset"
    assert properties["ContentDate"]["type"] == "OData.CSC.TimeRange"
    assert properties["Checksum"]["type"] == "OData.CSC.Checksum"
    assert properties["Checksum"]["is_collection"] is True
    navigation = {n["name"]: n["type"] for n in schema["navigation_properties"]}
    assert navigation == {"Attributes": "Collection(OData.CSC.Attribute)"}


def test_query_filter_and_get_through_the_client(service, sqlite_catalog) -> None:
    products = service.entities["Products"]
    prefix = "S1C_OPER_AUX_POEORB"
    found = service.query(products).filter(products.Name.startswith(prefix)).all()
    (expected,) = [p for p in sqlite_catalog.fixed if p.name.startswith(prefix)]
    assert [(str(f.Id), f.Name, f.ContentLength) for f in found] == [
        (str(expected.id), expected.name, len(expected.data))
    ]
    large = service.query(products).filter(products.ContentLength > 3000).all()
    assert sorted(p.Name for p in large) == sorted(p.name for p in sqlite_catalog.fixed if len(p.data) > 3000)
    one = service.query(products).get(expected.id)
    assert one.Name == expected.name

"""JSON shapes of the entities, exactly as the contract lists their properties."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from auxip.api.formats import odata_timestamp
from auxip.catalog.types import OPEN_END
from auxip.catalog.views import AttributeView, ProductView


def attribute_json(attribute: AttributeView) -> dict[str, Any]:
    value = attribute.value
    if isinstance(value, datetime):
        value = odata_timestamp(value)
    return {
        "@odata.type": f"#OData.CSC.{attribute.value_type}Attribute",
        "Name": attribute.name,
        "ValueType": attribute.value_type,
        "Value": value,
    }


def product_json(
    product: ProductView, *, expand_attributes: bool = False, select: Collection[str] | None = None
) -> dict[str, Any]:
    """One product; `select` limits the properties (Id is always kept, as OData keys are)."""
    properties: dict[str, Any] = {
        "Id": str(product.id),
        "Name": product.name,
        "ContentType": product.content_type,
        "ContentLength": product.content_length,
        "OriginDate": odata_timestamp(product.origin_date),
        "PublicationDate": odata_timestamp(product.publication_date),
        "EvictionDate": odata_timestamp(product.eviction_date),
        "Checksum": [
            {"Algorithm": c.algorithm, "Value": c.value, "ChecksumDate": odata_timestamp(c.checksum_date)}
            for c in product.checksums
        ],
        "ContentDate": {
            "Start": odata_timestamp(product.content_date_start),
            "End": odata_timestamp(product.content_date_end or OPEN_END),
        },
    }
    if select is not None:
        properties = {key: value for key, value in properties.items() if key in select or key == "Id"}
    document: dict[str, Any] = {"@odata.mediaContentType": product.content_type, **properties}
    if expand_attributes:
        document["Attributes"] = [attribute_json(a) for a in product.attributes]
    return document

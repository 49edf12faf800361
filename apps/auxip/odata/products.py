"""The Products entity set: its OData description over the catalog tables, and the selects of a collection request.

Attribute lambdas: one EXISTS on `product_attribute` per lambda, comparing the cast's typed value column (no casts
in SQL, so `ix_attribute_<type>` on (name, value_<type>, product_id) serves it). The guard restricting rows to the
cast's type is `value_<type> IS NOT NULL` rather than `value_type = '<Type>'`: the catalog's check constraint makes
them equivalent (exactly one value column is set, the one of value_type), and the former stays within the index.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Select, exists, func, literal, select

from auxip.catalog.models import VALUE_COLUMNS, Attribute, Product
from auxip.catalog.types import OPEN_END, UTCDateTime
from auxip.odata.compiler import FilterCompiler
from auxip.odata.entities import Collection, EdmType, Entity, ItemType, Property
from auxip.odata.options import QueryOptions

_product = Product.__table__
_attribute = Attribute.__table__

# Attribute ValueType -> EDM type of its `Value`.
_VALUE_EDM_TYPES: Final = {
    "String": EdmType.STRING,
    "Integer": EdmType.INT64,
    "Double": EdmType.DOUBLE,
    "DateTimeOffset": EdmType.DATETIME,
    "Boolean": EdmType.BOOLEAN,
}


def _attribute_casts() -> dict[str, ItemType]:
    casts: dict[str, ItemType] = {}
    for value_type, column_name in VALUE_COLUMNS.items():
        value_column = _attribute.c[column_name]
        casts[f"OData.CSC.{value_type}Attribute"] = ItemType(
            properties={
                "Name": Property(_attribute.c.name, EdmType.STRING),
                "Value": Property(value_column, _VALUE_EDM_TYPES[value_type]),
            },
            guard=value_column.is_not(None),
        )
    return casts


PRODUCTS: Final = Entity(
    name="Products",
    table=_product,
    key="Id",
    properties={
        "Id": Property(_product.c.id, EdmType.GUID),
        "Name": Property(_product.c.name, EdmType.STRING),
        "ContentType": Property(_product.c.content_type, EdmType.STRING),
        "ContentLength": Property(_product.c.content_length, EdmType.INT64),
        "OriginDate": Property(_product.c.origin_date, EdmType.DATETIME),
        "PublicationDate": Property(_product.c.publication_date, EdmType.DATETIME),
        "EvictionDate": Property(_product.c.eviction_date, EdmType.DATETIME),
        "ContentDate/Start": Property(_product.c.content_date_start, EdmType.DATETIME),
        # NULL (open-ended) compares and sorts as OPEN_END, the value the API renders for it.
        # The catalog guarantees Start <= End (a check constraint; OPEN_END is later than any Start).
        "ContentDate/End": Property(
            func.coalesce(_product.c.content_date_end, literal(OPEN_END, UTCDateTime())),
            EdmType.DATETIME,
            lower_columns=(_product.c.content_date_start,),
        ),
    },
    collections={
        "Attributes": Collection(
            table=_attribute,
            correlation=_attribute.c.product_id == _product.c.id,
            casts=_attribute_casts(),
            unique_item_property="Name",  # the attribute table's key is (product_id, name)
        )
    },
    selectable=frozenset(
        {
            "Id",
            "Name",
            "ContentType",
            "ContentLength",
            "OriginDate",
            "PublicationDate",
            "EvictionDate",
            "Checksum",
            "ContentDate",
        }
    ),
    expandable=frozenset({"Attributes"}),
)


def products_select(options: QueryOptions) -> tuple[Select[Any], Select[tuple[int]] | None]:
    """(the page of product table rows, the `$count` select or None) for validated options on PRODUCTS.

    Evicted products are never listed. Run the page with `auxip.catalog.views.load_product_views`, which attaches
    checksums (always part of the entity) and attributes (for `$expand=Attributes`).
    """
    if options.entity is not PRODUCTS:
        raise ValueError(f"options were parsed for {options.entity.name}, not Products")
    conditions: list[Any] = [_product.c.evicted_at.is_(None)]
    if options.where is not None:
        conditions.append(options.where)
    page = (
        select(_product).where(*conditions).order_by(*options.order_clauses()).offset(options.skip).limit(options.limit)
    )
    count = _count_select(options, conditions) if options.count else None
    return page, count


def _count_select(options: QueryOptions, conditions: list[Any]) -> Select[tuple[int]]:
    """`$count`: for a single productType-style lambda, count attribute rows and leave out the (few) evicted
    products by an anti-join, instead of probing every matching product (1M catalog, 100k matches: see
    benchmarks/README.md); the general form otherwise. Both give the same number (tests/odata)."""
    rows = FilterCompiler(PRODUCTS).single_item_rows(options.filter_tree) if options.filter_tree is not None else None
    if rows is None:
        return select(func.count()).select_from(_product).where(*conditions)
    collection, condition = rows
    evicted = (
        select(literal(1))
        .select_from(_product)
        .where(_product.c.id == _attribute.c.product_id, _product.c.evicted_at.is_not(None))
    )
    return select(func.count()).select_from(collection.table).where(condition, ~exists(evicted))

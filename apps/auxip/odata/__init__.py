"""OData query options to SQLAlchemy selects for the AUXIP API; values are always bound parameters.

Modules, one job each:
- `lexer`: odata-query's sly lexer extended for the CSC dialect (casts, enum literals, DateTimeOffset forms, ...);
- `parser`: `$filter` text to odata-query's AST, size limits, parse errors as 400;
- `literals`: literals converted to the Python value of the compared property's EDM type;
- `entities`: the typed description of an entity set (property -> column + EDM type, lambda collections);
- `matching`: case-sensitive contains/startswith/endswith on PostgreSQL and SQLite;
- `compiler`: AST to a SQLAlchemy condition for one entity description;
- `options`: `$filter`, `$orderby`, `$top`, `$skip`, `$count`, `$expand`, `$select`, `$format` to `QueryOptions`;
- `products`: the Products description and `products_select`.
Every client mistake raises `auxip.api.errors.ODataError` with status 400 and a message naming the problem.
"""

from auxip.odata.compiler import FilterCompiler, compile_filter
from auxip.odata.entities import Collection, EdmType, Entity, EnumType, ItemType, Property
from auxip.odata.options import DEFAULT_PAGE_CAP, OrderKey, QueryOptions, parse_query_options
from auxip.odata.parser import parse_filter
from auxip.odata.products import PRODUCTS, products_select

__all__ = [
    "DEFAULT_PAGE_CAP",
    "PRODUCTS",
    "Collection",
    "EdmType",
    "Entity",
    "EnumType",
    "FilterCompiler",
    "ItemType",
    "OrderKey",
    "Property",
    "QueryOptions",
    "compile_filter",
    "parse_filter",
    "parse_query_options",
    "products_select",
]

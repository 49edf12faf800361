"""Entity descriptions: what an OData entity set exposes to `$filter`, `$orderby`, `$select` and `$expand`.

The compiler and the query options know nothing about Products or Subscriptions; they only read one of these
descriptions. Property names are OData paths (`ContentDate/Start`), each bound to one SQL column and one EDM type:
the type decides which literals a comparison accepts and how they are converted, so the SQL never casts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, FromClause


class EdmType(enum.Enum):
    STRING = "Edm.String"
    INT64 = "Edm.Int64"
    DOUBLE = "Edm.Double"
    DATETIME = "Edm.DateTimeOffset"
    BOOLEAN = "Edm.Boolean"
    GUID = "Edm.Guid"
    ENUM = "Edm.Enum"


@dataclass(frozen=True)
class EnumType:
    """An OData enum type, e.g. `OData.CSC.SubscriptionStatus` with members running, paused, cancelled."""

    qualified_name: str
    members: frozenset[str]


# eq=False: SQLAlchemy columns overload `==`, so identity is the only sane equality for these records.
@dataclass(frozen=True, eq=False)
class Property:
    """One filterable property: its column, its EDM type and whether the column may hold NULL."""

    column: ColumnElement[Any]
    type: EdmType
    nullable: bool = False
    sortable: bool = True
    # Required for EdmType.ENUM: the enum literal's type name must match and its member must be known.
    enum_type: EnumType | None = None
    # Columns never greater than this property (ContentDate/Start for ContentDate/End). `le`/`lt`/`eq` on the
    # property also bound them, which changes nothing in the result but lets the planner use their indexes.
    lower_columns: tuple[ColumnElement[Any], ...] = ()

    def __post_init__(self) -> None:
        if (self.type is EdmType.ENUM) != (self.enum_type is not None):
            raise ValueError("enum_type is required for, and only for, EdmType.ENUM properties")


@dataclass(frozen=True, eq=False)
class ItemType:
    """The element type of a lambda collection under one type cast (e.g. `OData.CSC.IntegerAttribute`).

    `guard` restricts the collection's rows to that cast; `properties` are what the lambda variable exposes.
    """

    properties: Mapping[str, Property]
    guard: ColumnElement[bool]


@dataclass(frozen=True, eq=False)
class Collection:
    """A collection usable in `any`/`all`: rows of `table` belonging to the entity through `correlation`.

    Compiled to a correlated EXISTS subquery. `casts` maps a qualified cast segment to its item type; the contract
    always writes the cast, and without it the type of `Value` (hence the column) would be unknown.
    """

    table: FromClause
    correlation: ColumnElement[bool]
    casts: Mapping[str, ItemType]
    # An item property no two items of one owner share (Attributes: Name). A lambda fixing it with `eq` matches at
    # most one row per owner, so counting matching rows counts owners (see FilterCompiler.single_item_rows).
    unique_item_property: str | None = None


@dataclass(frozen=True, eq=False)
class Entity:
    """An entity set as the query options see it."""

    name: str
    table: FromClause
    key: str
    properties: Mapping[str, Property]
    collections: Mapping[str, Collection] = field(default_factory=dict)
    # Top-level names accepted by $select and $expand (complex and navigation properties included).
    selectable: frozenset[str] = frozenset()
    expandable: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.key not in self.properties:
            raise ValueError(f"{self.name}: key {self.key!r} is not one of its properties")

    @property
    def key_column(self) -> ColumnElement[Any]:
        return self.properties[self.key].column

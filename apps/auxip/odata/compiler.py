"""odata-query AST to a SQLAlchemy condition, driven by an `Entity` description; values are always bound parameters.

Semantics worth knowing:
- Two-valued logic: OData says `null lt X` is false and `not (null lt X)` is true, while SQL gives NULL for both.
  Comparisons on nullable properties are therefore guarded (`col IS NOT NULL AND col < :x`, `col IS NULL OR
  col <> :x`), so `not` gives the OData answer.
- Lambdas (`Attributes/OData.CSC.IntegerAttribute/any(a: ...)`) become correlated EXISTS subqueries; the cast picks
  the typed value column and a guard restricting rows to that type (see `auxip.odata.products`).
- `and`/`or` chains are flattened iteratively (a filter of a few hundred terms would otherwise recurse once per
  term); the nesting depth that remains is bounded by `max_depth`.
- DateTimeOffset literals finer than a microsecond: the catalog holds microseconds, so for an inexact literal t
  truncated to m, `x > t` and `x >= t` both mean `x > m`, `x < t` and `x <= t` mean `x <= m`, `eq` is never true.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from odata_query import ast
from sqlalchemy import ColumnElement, and_, exists, false, literal, not_, or_, select, true

from auxip.api.errors import bad_request
from auxip.odata.entities import Collection, EdmType, Entity, ItemType, Property
from auxip.odata.lexer import full_name
from auxip.odata.literals import Instant, coerce, describe
from auxip.odata.matching import MatchKind, string_match

MAX_DEPTH: Final = 50
MAX_IN_ITEMS: Final = 100

_OPERATORS: Final[dict[type[ast._Comparator], Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
# `5 lt X` is `X gt 5`.
_MIRRORED: Final[dict[type[ast._Comparator], ast._Comparator]] = {
    ast.Eq: ast.Eq(),
    ast.NotEq: ast.NotEq(),
    ast.Lt: ast.Gt(),
    ast.LtE: ast.GtE(),
    ast.Gt: ast.Lt(),
    ast.GtE: ast.LtE(),
}
_OP_NAMES: Final[dict[type[ast._Comparator], str]] = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.In: "in",
}
# Types without a meaningful order: only equality and `in`.
_UNORDERED: Final = frozenset({EdmType.ENUM, EdmType.GUID})
_FUNCTIONS: Final = {kind.value: kind for kind in MatchKind}


@dataclass(frozen=True)
class _LambdaScope:
    variable: str
    cast: str
    item: ItemType


def _path(node: ast._Node) -> tuple[str, ...] | None:
    """`A/B/C` as ("A", "B", "C"), or None if `node` is not a property path."""
    segments: list[str] = []
    while isinstance(node, ast.Attribute):
        segments.append(node.attr)
        node = node.owner
    if not isinstance(node, ast.Identifier):
        return None
    segments.append(full_name(node))
    return tuple(reversed(segments))


def _flatten(node: ast.BoolOp) -> list[ast._Node]:
    """The operands of a chain of one boolean operator, in order, without recursion."""
    op_type = type(node.op)
    operands: list[ast._Node] = []
    stack: list[ast._Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.BoolOp) and type(current.op) is op_type:
            stack.append(current.right)
            stack.append(current.left)
        else:
            operands.append(current)
    return operands


class FilterCompiler:
    """Compiles parsed `$filter` trees for one entity; stateless, so one instance can serve every request."""

    def __init__(self, entity: Entity, max_depth: int = MAX_DEPTH, max_in_items: int = MAX_IN_ITEMS) -> None:
        self.entity = entity
        self.max_depth = max_depth
        self.max_in_items = max_in_items

    def compile(self, tree: ast._Node) -> ColumnElement[bool]:
        return self._condition(tree, None, 1)

    def single_item_rows(self, tree: ast._Node) -> tuple[Collection, ColumnElement[bool]] | None:
        """For a filter that is one `any` lambda fixing the collection's unique item property with `eq`: the
        collection and the condition on its rows (no correlation), such that each owner has at most one matching
        row. Counting those rows counts the matching owners without visiting the owner table. Else None."""
        if not isinstance(tree, ast.CollectionLambda) or not isinstance(tree.operator, ast.Any) or not tree.lambda_:
            return None
        path = _path(tree.owner) or ()
        collection = self.entity.collections.get(path[0]) if path else None
        if collection is None or collection.unique_item_property is None:
            return None
        variable = full_name(tree.lambda_.identifier)
        body = tree.lambda_.expression
        conjuncts = _flatten(body) if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
        fixed = any(
            isinstance(part, ast.Compare)
            and isinstance(part.comparator, ast.Eq)
            and _path(part.left) == (variable, collection.unique_item_property)
            and isinstance(part.right, ast.String)
            for part in conjuncts
        )
        if not fixed:
            return None
        item, cast = self._cast(path[0], collection, path[1:])
        condition = self._condition(body, _LambdaScope(variable, cast, item), 2)
        return collection, and_(item.guard, condition)

    # Conditions ----------------------------------------------------------------------------------------------

    def _condition(self, node: ast._Node, scope: _LambdaScope | None, depth: int) -> ColumnElement[bool]:
        if depth > self.max_depth:
            raise bad_request(f"$filter is nested more than {self.max_depth} levels deep")
        if isinstance(node, ast.BoolOp):
            parts = [self._condition(operand, scope, depth + 1) for operand in _flatten(node)]
            return and_(*parts) if isinstance(node.op, ast.And) else or_(*parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not_(self._condition(node.operand, scope, depth + 1))
        if isinstance(node, ast.Compare):
            return self._comparison(node, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.CollectionLambda):
            return self._lambda(node, scope, depth)
        if isinstance(node, ast.Boolean):
            return true() if node.val.lower() == "true" else false()
        path = _path(node)
        if path is not None:
            name, prop = self._resolve(path, scope)
            if prop.type is EdmType.BOOLEAN:
                return self._guarded(prop, prop.column == true())
            raise bad_request(f"$filter: {name} is a {prop.type.value}, not a condition")
        raise bad_request(f"$filter: {describe(node)} is not a condition")

    def _comparison(self, node: ast.Compare, scope: _LambdaScope | None) -> ColumnElement[bool]:
        comparator, left, right = node.comparator, node.left, node.right
        if isinstance(comparator, ast.In):
            return self._in(left, right, scope)
        left_path, right_path = _path(left), _path(right)
        if left_path is None and right_path is not None:
            comparator, left, right = _MIRRORED[type(comparator)], right, left
            left_path, right_path = right_path, None
        op_name = _OP_NAMES[type(comparator)]
        if left_path is None:
            if isinstance(left, ast.UnaryOp) and isinstance(left.op, ast.Not):
                raise bad_request(
                    f"$filter: 'not' binds tighter than '{op_name}': write not (A {op_name} B), not 'not A {op_name} B'"
                )
            if isinstance(left, ast.Call) and isinstance(right, ast.Boolean) and op_name in ("eq", "ne"):
                # `startswith(Name,'S1') eq true`
                wanted = (right.val.lower() == "true") == (op_name == "eq")
                condition = self._call(left, scope)
                return condition if wanted else not_(condition)
            raise bad_request(
                f"$filter: '{op_name}' needs a property on one side and a literal on the other, "
                f"got {describe(left)} and {describe(right)}"
            )
        if right_path is not None:
            raise bad_request(
                f"$filter: comparing two properties ({'/'.join(left_path)} {op_name} {'/'.join(right_path)}) "
                "is not supported; compare a property with a literal"
            )
        name, prop = self._resolve(left_path, scope)
        column = prop.column
        if isinstance(right, ast.Null):
            if op_name == "eq":
                return column.is_(None)
            if op_name == "ne":
                return column.is_not(None)
            raise bad_request(f"$filter: null can only be compared with eq or ne, not '{op_name}' ({name})")
        if prop.type in _UNORDERED and op_name not in ("eq", "ne"):
            raise bad_request(f"$filter: '{op_name}' does not apply to {name} ({prop.type.value}); use eq, ne or in")
        value = coerce(right, name, prop)
        if isinstance(value, Instant) and not value.exact:
            return self._inexact_instant(prop, comparator, value)
        if isinstance(value, Instant):
            value = value.value
        # An explicit bound parameter of the column's type: SQLAlchemy refuses `col > True` with a bare Python bool.
        compared: ColumnElement[bool] = _OPERATORS[type(comparator)](column, literal(value, type_=column.type))
        if op_name == "ne" and prop.nullable:
            return or_(column.is_(None), compared)
        return self._guarded(prop, _with_implied_bounds(prop, op_name, value, compared))

    def _inexact_instant(self, prop: Property, comparator: ast._Comparator, instant: Instant) -> ColumnElement[bool]:
        column, floor = prop.column, instant.value
        if isinstance(comparator, ast.Eq):
            return false()
        if isinstance(comparator, ast.NotEq):
            return true()
        if isinstance(comparator, ast.Gt | ast.GtE):
            return self._guarded(prop, column > floor)
        return self._guarded(prop, _with_implied_bounds(prop, "le", floor, column <= floor))

    def _in(self, left: ast._Node, right: ast._Node, scope: _LambdaScope | None) -> ColumnElement[bool]:
        path = _path(left)
        if path is None:
            raise bad_request(f"$filter: the left side of 'in' must be a property, got {describe(left)}")
        name, prop = self._resolve(path, scope)
        if not isinstance(right, ast.List):
            raise bad_request(f"$filter: 'in' needs a parenthesised list of literals after {name}")
        if len(right.val) > self.max_in_items:
            raise bad_request(
                f"$filter: the 'in' list of {name} has {len(right.val)} items; the limit is {self.max_in_items}"
            )
        values: list[object] = []
        for item in right.val:
            if isinstance(item, ast.Null):
                raise bad_request(f"$filter: null cannot be an 'in' item ({name}); use '{name} eq null'")
            value = coerce(item, name, prop)
            if isinstance(value, Instant):
                if not value.exact:
                    continue  # finer than the catalog's microseconds: equal to nothing
                value = value.value
            values.append(value)
        if not values:
            return false()
        return self._guarded(prop, prop.column.in_(values))

    def _call(self, node: ast.Call, scope: _LambdaScope | None) -> ColumnElement[bool]:
        function = full_name(node.func)
        kind = _FUNCTIONS.get(function)
        if kind is None:
            supported = ", ".join(sorted(_FUNCTIONS))
            raise bad_request(f"$filter: function {function!r} is not supported here (supported: {supported})")
        if len(node.args) != 2:
            raise bad_request(f"$filter: {function} takes 2 arguments, got {len(node.args)}")
        target, text = node.args
        path = _path(target)
        if path is None:
            raise bad_request(f"$filter: the first argument of {function} must be a property, got {describe(target)}")
        name, prop = self._resolve(path, scope)
        if prop.type is not EdmType.STRING:
            raise bad_request(f"$filter: {function} needs a String property, {name} is a {prop.type.value}")
        if not isinstance(text, ast.String) or type(text) is not ast.String:
            raise bad_request(
                f"$filter: the second argument of {function} must be a string literal, got {describe(text)}"
            )
        return self._guarded(prop, string_match(prop.column, kind, text.val))

    def _lambda(self, node: ast.CollectionLambda, scope: _LambdaScope | None, depth: int) -> ColumnElement[bool]:
        path = _path(node.owner) or ()
        collection_name = path[0] if path else describe(node.owner)
        collection = self.entity.collections.get(collection_name)
        if collection is None:
            raise bad_request(
                f"$filter: {collection_name!r} is not a collection of {self.entity.name} usable with any/all"
            )
        if scope is not None:
            raise bad_request(f"$filter: lambdas cannot be nested (inside {scope.variable}: {collection_name})")
        item, cast = self._cast(collection_name, collection, path[1:])
        operator_name = "any" if isinstance(node.operator, ast.Any) else "all"
        if node.lambda_ is None:
            body: ColumnElement[bool] = true()
        else:
            inner = _LambdaScope(full_name(node.lambda_.identifier), cast, item)
            body = self._condition(node.lambda_.expression, inner, depth + 1)
        rows = select(literal(1)).select_from(collection.table).where(collection.correlation, item.guard)
        if operator_name == "any":
            return exists(rows.where(body))
        return not_(exists(rows.where(not_(body))))

    def _cast(self, name: str, collection: Collection, segments: tuple[str, ...]) -> tuple[ItemType, str]:
        casts = ", ".join(sorted(collection.casts))
        if not segments:
            raise bad_request(f"$filter: {name}/any(...) needs a type cast segment, one of: {casts}")
        if len(segments) > 1 or segments[0] not in collection.casts:
            raise bad_request(f"$filter: unknown type cast {'/'.join(segments)!r} on {name}; use one of: {casts}")
        return collection.casts[segments[0]], segments[0]

    # Properties ----------------------------------------------------------------------------------------------

    def _resolve(self, path: tuple[str, ...], scope: _LambdaScope | None) -> tuple[str, Property]:
        name = "/".join(path)
        if scope is not None and path[0] == scope.variable:
            rest = path[1:]
            if rest and "." in rest[0]:
                if rest[0] != scope.cast:
                    raise bad_request(f"$filter: {name}: the cast {rest[0]} does not match the lambda's {scope.cast}")
                rest = rest[1:]
            if len(rest) != 1 or rest[0] not in scope.item.properties:
                known = ", ".join(sorted(scope.item.properties))
                raise bad_request(f"$filter: unknown property {name!r} (the lambda variable has: {known})")
            return name, scope.item.properties[rest[0]]
        prop = self.entity.properties.get(name)
        if prop is not None:
            return name, prop
        if path[0] in self.entity.collections:
            raise bad_request(f"$filter: {path[0]} can only be filtered with any(...) or all(...)")
        raise bad_request(f"$filter: unknown property {name!r} of {self.entity.name}")

    @staticmethod
    def _guarded(prop: Property, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        """`condition`, false rather than NULL when the property is NULL (two-valued logic, see module docstring)."""
        if prop.nullable:
            return and_(prop.column.is_not(None), condition)
        return condition


def _with_implied_bounds(
    prop: Property, op_name: str, value: object, condition: ColumnElement[bool]
) -> ColumnElement[bool]:
    """`prop <= v` also bounds every column known to be <= prop: the same rows, but an index range the planner can use
    (a ContentDate window `Start ge X and End le Y` becomes a Start range [X, Y] instead of a scan of everything
    after X)."""
    if op_name not in ("le", "lt", "eq") or not prop.lower_columns:
        return condition
    return and_(condition, *(lower <= literal(value, type_=lower.type) for lower in prop.lower_columns))


def compile_filter(entity: Entity, tree: ast._Node, max_depth: int = MAX_DEPTH) -> ColumnElement[bool]:
    return FilterCompiler(entity, max_depth=max_depth).compile(tree)

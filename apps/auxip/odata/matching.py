"""Case-sensitive `contains` / `startswith` / `endswith` with the same meaning on PostgreSQL and SQLite.

OData string functions are case-sensitive. PostgreSQL's LIKE is, SQLite's is not (ASCII letters fold), and turning
on `PRAGMA case_sensitive_like` would depend on every connection's setup (and the pragma is deprecated). So one
construct, `case_sensitive_match`, renders per dialect:
- PostgreSQL (and any other backend): `column LIKE :pattern ESCAPE '\\'` with `\\`, `%` and `_` escaped, which a
  `varchar_pattern_ops` index serves for prefixes;
- SQLite: `column GLOB :pattern` with `*`, `?` and `[` escaped as one-character classes; GLOB is case-sensitive and
  SQLite can serve a prefix GLOB from an ordinary (BINARY collation) index.
The user's text is always a bound parameter; the escaping happens in the parameter's type when it is bound, where
the dialect is known, so the same statement object (and SQLAlchemy's cached compilation) serves both backends.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeDecorator


class MatchKind(enum.Enum):
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"


def like_pattern(kind: MatchKind, text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _wrap(kind, escaped, "%")


def glob_pattern(kind: MatchKind, text: str) -> str:
    # Inside [...] every character is literal, so a one-character class escapes GLOB's three metacharacters.
    escaped = "".join(f"[{char}]" if char in "*?[" else char for char in text)
    return _wrap(kind, escaped, "*")


def _wrap(kind: MatchKind, escaped: str, wildcard: str) -> str:
    if kind is MatchKind.STARTSWITH:
        return escaped + wildcard
    if kind is MatchKind.ENDSWITH:
        return wildcard + escaped
    return wildcard + escaped + wildcard


class MatchPattern(TypeDecorator[str]):
    """A bound parameter holding the user's plain text, turned into the dialect's pattern when bound."""

    impl = String
    cache_ok = True

    def __init__(self, kind: MatchKind) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return glob_pattern(self.kind, value)
        return like_pattern(self.kind, value)


class case_sensitive_match(FunctionElement[Any]):
    """`case_sensitive_match(column, pattern_bindparam)`; see the module docstring for the rendering."""

    # Not Boolean: SQLAlchemy would render a Boolean-typed function as `... = 1` on SQLite (no native booleans),
    # which hides the GLOB from SQLite's prefix-index optimisation. The expression is a predicate on every backend.
    type = NullType()
    inherit_cache = True
    name = "case_sensitive_match"


@compiles(case_sensitive_match)
def _compile_like(element: case_sensitive_match, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = list(element.clauses)
    # Parenthesised so that no surrounding operator (NOT, =) can bind into it.
    return f"({compiler.process(column, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '\\')"


@compiles(case_sensitive_match, "sqlite")
def _compile_glob(element: case_sensitive_match, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = list(element.clauses)
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(pattern, **kw)})"


def string_match(column: ColumnElement[Any], kind: MatchKind, text: str) -> ColumnElement[bool]:
    """Case-sensitive `kind(column, text)`, with `text` bound as a parameter."""
    match: ColumnElement[bool] = case_sensitive_match(column, bindparam(None, text, type_=MatchPattern(kind)))
    return match

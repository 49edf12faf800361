"""The CSC dialect of the OData `$filter` lexer: odata-query's sly lexer, extended where ESA's clients go beyond it.

odata-query (`odata_query.grammar`) already lexes and parses most of what the AUXIP contract needs: comparisons,
`and`/`or`/`not`, parentheses, `in` lists, string functions, `any`/`all` lambdas with any variable name, qualified
identifiers (`OData.CSC.StringAttribute`) and unquoted DateTimeOffset literals. What it does not do, and how it is
extended here, without touching its grammar tables:

1. DateTimeOffset literals: its `DATETIME` rule requires seconds and misses one form clients send. `CscLexer`
   overrides that one rule (sly keeps the rule's position, so token priority is unchanged) to accept
   `hh:mm`, `hh:mm:ss`, 1 to 12 fraction digits, `Z`, `±hh:mm`, no offset (read as UTC), and `␠hh:mm`: a `+` that a
   form-decoding HTTP layer turned into a space. The text of the literal is kept; `auxip.odata.literals` reads it.
2. The cast namespace: the parser keeps only the last part of a qualified name inside a path, so
   `Attributes/OData.CSC.StringAttribute` and `Attributes/Foo.StringAttribute` would look the same. Qualified
   identifiers are re-emitted with the full dotted name, so the compiler sees (and checks) `OData.CSC.StringAttribute`.
3. Enum literals `OData.CSC.SubscriptionStatus'running'`: the grammar has no enum literal. A qualified identifier
   immediately followed by a string is merged into one `STRING` token whose value is an `EnumLiteral` node; being a
   `STRING` to the grammar, it is accepted wherever a literal is, with no parser change.
4. `not(...)`: the `NOT` rule requires whitespace after the keyword, so `not(` lexes as a call to an unknown function
   `not`. The identifier `not` directly followed by `(` is re-emitted as the `NOT` token.
5. One-item `in` lists: odata-query requires Python's trailing comma (`in ('A',)`) because `('A')` is ambiguous
   with a parenthesised expression in its grammar; OData writes `in ('A')`. After `in`, the exact token sequence
   `( literal )` gets the comma inserted.

All rewrites work on tokens, never on the raw text, so nothing inside a string literal can be altered.

Left as odata-query has it, on purpose:
- `not` binds tighter than comparisons (OData's precedence table), so `not Name eq 'x'` means `(not Name) eq 'x'`;
  the compiler answers it with a 400 that shows the parenthesised form. `not contains(...)` and `not (...)` work.
- Keywords are matched case-insensitively (`AND`, `Eq`): lenient, and harmless.
- Its parser fails with AttributeError on `A/B/C/any(...)` (more than two segments before a lambda); no such path
  exists in the CSC model, and `auxip.odata.parser` turns that failure into a 400.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from odata_query import ast
from odata_query.grammar import ODataLexer

_DATE: Final = r"[1-9]\d{3}-(?:0\d|1[0-2])-(?:[0-2]\d|3[01])"
_HOUR_MINUTE: Final = r"(?:[01]\d|2[0-3]):[0-5]\d"
# Offset: Z, ±hh:mm, or " hh:mm" (a '+' decoded to a space); the look-ahead keeps " 12:30" from eating into a time.
_OFFSET: Final = rf"(?:Z|[+-]{_HOUR_MINUTE}|\x20{_HOUR_MINUTE}(?![\d:]))"
# Underscore-prefixed: in a sly class body an undefined UPPERCASE name evaluates to a token name, not this value.
_DATETIME_PATTERN: Final = rf"{_DATE}T{_HOUR_MINUTE}(?::[0-5]\d(?:\.\d{{1,12}})?)?{_OFFSET}?"

# Tokens that are a complete literal on their own (what may stand alone inside `in ( ... )`).
_LITERAL_TOKENS: Final = frozenset(
    {"STRING", "INTEGER", "DECIMAL", "BOOLEAN", "NULL", "GUID", "DATETIME", "DATE", "TIME", "DURATION"}
)


@dataclass(frozen=True)
class EnumLiteral(ast._Literal):
    """`Namespace.EnumType'member'`: `type_name` is the qualified enum type, `val` the member name."""

    type_name: str
    val: str

    @property
    def py_val(self) -> str:
        return self.val


# sly ships no type information; its tokens are plain objects with type, value, lineno and index.
Token = Any

_Rule = TypeVar("_Rule", bound=Callable[..., Any])


class CscLexer(ODataLexer):
    tokens = ODataLexer.tokens
    # sly injects `_` (the rule decorator) into the class body; declared so type checkers know it.
    _: Callable[..., Callable[[_Rule], _Rule]]

    # Same name as the base rule: sly replaces it in place, so its priority among the rules is unchanged.
    @_(_DATETIME_PATTERN)  # noqa: F821 (injected by sly's class namespace)
    def DATETIME(self, t: Token) -> Token:
        t.value = ast.DateTime(t.value)
        return t


def full_name(identifier: ast.Identifier) -> str:
    """`OData.CSC.StringAttribute` (odata-query's own `full_name` is untyped)."""
    return ".".join((*identifier.namespace, identifier.name))


def _token(type_: str, value: Any, like: Token) -> Token:
    # A copy keeps the position (index, lineno) of the token it replaces, for error messages.
    token = copy.copy(like)
    token.type = type_
    token.value = value
    return token


def _is_qualified(token: Token) -> bool:
    return token.type == "ODATA_IDENTIFIER" and bool(token.value.namespace)


def tokenize(text: str) -> list[Token]:
    """Tokens of `text` for `odata_query.grammar.ODataParser`, with the CSC rewrites of the module docstring.

    Raises odata-query's `TokenizingException` on text no rule matches.
    """
    # Whitespace is a token of its own in this grammar, so consecutive tokens are adjacent in the text.
    raw: list[Token] = list(CscLexer().tokenize(text))
    out: list[Token] = []
    i = 0
    while i < len(raw):
        token = raw[i]
        following = raw[i + 1] if i + 1 < len(raw) else None
        if _is_qualified(token) and following is not None and following.type == "STRING":
            literal = EnumLiteral(type_name=full_name(token.value), val=following.value.val)
            out.append(_token("STRING", literal, token))
            i += 2
            continue
        if _is_qualified(token):
            out.append(_token("ODATA_IDENTIFIER", ast.Identifier(full_name(token.value)), token))
        elif (
            token.type == "ODATA_IDENTIFIER"
            and token.value.name.lower() == "not"
            and following is not None
            and following.type == "("
        ):
            out.append(_token("NOT", ast.Not(), token))
        else:
            out.append(token)
        i += 1
    return _complete_single_item_lists(out)


def _complete_single_item_lists(tokens: list[Token]) -> list[Token]:
    """After `in`, turn `( literal )` into `( literal , )`, the one-item list form odata-query's grammar accepts."""
    out: list[Token] = []
    for index, token in enumerate(tokens):
        out.append(token)
        if token.type != ")" or index < 3:
            continue
        significant = [t for t in tokens[max(0, index - 5) : index] if t.type != "WS"]
        if (
            len(significant) >= 3
            and significant[-3].type == "IN"
            and significant[-2].type == "("
            and significant[-1].type in _LITERAL_TOKENS
        ):
            out.insert(len(out) - 1, _token(",", ",", token))
    return out

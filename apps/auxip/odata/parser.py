"""`$filter` text to an odata-query AST, with the size limits and every parse failure turned into a 400."""

from __future__ import annotations

from typing import Any, Final

from odata_query import ast
from odata_query.exceptions import (
    ArgumentCountException,
    ODataException,
    ParsingException,
    TokenizingException,
    UnknownFunctionException,
)
from odata_query.grammar import ODataParser

from auxip.api.errors import bad_request
from auxip.odata.lexer import tokenize

# Bounds on what one request may make the server parse and the database plan.
MAX_FILTER_BYTES: Final = 8 * 1024


MAX_PAREN_DEPTH: Final = 50


def _paren_depth(tokens: list[Any]) -> int:
    depth = deepest = 0
    for token in tokens:
        if token.type == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif token.type == ")":
            depth -= 1
    return deepest


def parse_filter(text: str, max_bytes: int = MAX_FILTER_BYTES, max_depth: int = MAX_PAREN_DEPTH) -> ast._Node:
    """Parse a `$filter` value; raises `ODataError` (400) naming the problem."""
    if "\x00" in text:
        raise bad_request("$filter contains a NUL character")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise bad_request("$filter is not valid UTF-8 text") from None
    if size > max_bytes:
        raise bad_request(f"$filter is {size} bytes long; the limit is {max_bytes}")
    stripped = text.strip()
    if not stripped:
        raise bad_request("$filter is empty")
    try:
        tokens = tokenize(stripped)
        # Parentheses make no AST node, so the compiler's depth limit does not see them; bound them here.
        if _paren_depth(tokens) > max_depth:
            raise bad_request(f"$filter: parentheses are nested more than {max_depth} levels deep")
        tree: ast._Node = ODataParser().parse(iter(tokens))
    except TokenizingException as exc:
        position = exc.token.index
        raise bad_request(
            f"$filter: cannot read {stripped[position : position + 20]!r} at position {position}"
        ) from None
    except ParsingException as exc:
        if exc.eof or exc.token is None:
            raise bad_request("$filter ends unexpectedly (incomplete expression or missing ')')") from None
        token = exc.token
        shown = stripped[token.index : token.index + 20].strip() or repr(token.type)
        raise bad_request(f"$filter: unexpected {shown!r} at position {token.index}") from None
    except UnknownFunctionException as exc:
        raise bad_request(f"$filter: unknown function {exc.function_name!r}") from None
    except ArgumentCountException as exc:
        raise bad_request(f"$filter: {exc}") from None
    except ODataException as exc:
        raise bad_request(f"$filter: {exc}") from None
    except (AttributeError, NotImplementedError):
        # odata-query's parser assumes a lambda's collection path has at most two segments (`A/B/any(...)`):
        # `A/B/C/any(...)` fails inside its AST building with these. No such path exists in the CSC model.
        raise bad_request(
            "$filter: any/all must follow a collection path like Attributes/OData.CSC.<Type>Attribute"
        ) from None
    except RecursionError:
        # odata-query rebuilds long `a/b/c/...` paths recursively; no real path is anywhere near that long.
        raise bad_request("$filter: a property path or expression is too deeply nested") from None
    if tree is None:
        raise bad_request("$filter is empty")
    return tree

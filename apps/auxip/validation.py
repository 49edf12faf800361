"""Field types shared by the configuration models: each check written once, its error naming what to fix."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


def repeated(values: Sequence[str]) -> list[str]:
    """The values that occur more than once, sorted: what a uniqueness check names in its error."""
    return sorted({value for value in values if values.count(value) > 1})


def require_unique(values: Sequence[str], what: str) -> None:
    """Raise `duplicate <what>: a, b` when a value occurs more than once (for a model's field validator)."""
    duplicates = repeated(values)
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")


#: A regular expression that compiles.
Regex = Annotated[str, AfterValidator(_compiles)]


def scheme_in(schemes: Collection[str], what: str) -> Callable[[str], str]:
    """A validator accepting URLs whose scheme is one of `schemes` (`what`: "source", "target")."""

    def check(url: str) -> str:
        scheme = urlsplit(url).scheme
        if scheme not in schemes:
            raise ValueError(f"unsupported {what} scheme {scheme!r}; use one of {', '.join(schemes)}")
        return url

    return check

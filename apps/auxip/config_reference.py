"""The configuration reference (key path, type, default, description), generated from the pydantic models.

Descriptions come from the `#:` comment lines written above each field in the models' source (read with
`inspect.getsource`), falling back to `Field(description=...)`. Why comments: the config models are written that
way throughout (Sphinx's attribute-comment convention) and pydantic does not keep comments, so reading the source
is the only way to reuse them without duplicating every sentence into `Field(description=...)`.

The reference is embedded in README.md between `<!-- config-reference:start -->` and `<!-- config-reference:end -->`;
`auxip config reference --write README.md` regenerates that section, and a test checks it is current.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, Union

from pydantic import BaseModel, RootModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from auxip.config import AuxipConfig

START_MARKER: Final = "<!-- config-reference:start -->"
END_MARKER: Final = "<!-- config-reference:end -->"
REQUIRED: Final = "required"

_SCALAR_NAMES: Final[dict[Any, str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    datetime: "datetime",
    type(None): "null",
}
_CONSTRAINTS: Final = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "min length"))
_FIELD_LINE: Final = re.compile(r"^(\s+)(\w+)\s*:")


class MarkersMissingError(ValueError):
    """The file to update has no `config-reference` markers."""


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One key of the configuration; sections and lists of sections have rows of their own before their keys."""

    path: str
    type: str
    #: The default as JSON-compatible data; None with `required`.
    default: Any
    required: bool
    description: str
    #: A section or a list of sections: its keys follow as `path.key` or `path[].key`.
    section: bool = False


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the `#:` comment lines right above it, joined, over the model and its base classes."""
    comments: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls.__module__.startswith("pydantic"):
            continue
        try:
            lines = inspect.getsource(cls).splitlines()[1:]
        except (OSError, TypeError):
            continue  # no source (a frozen build): the Field descriptions remain
        body_indent = next((len(line) - len(line.lstrip()) for line in lines if line.strip()), 0)
        pending: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped.removeprefix("#:").strip())
                continue
            match = _FIELD_LINE.match(line)
            if match and len(match[1]) == body_indent and pending and match[2] in model.model_fields:
                comments[match[2]] = " ".join(pending)
            pending = []
    return comments


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _nested(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model whose keys continue this path, and `[]` when it is a list of them."""
    for member in _members(annotation):
        if _is_model(member) and issubclass(member, RootModel):
            return _nested(member.model_fields["root"].annotation)
        if _is_model(member):
            return member, ""
        if typing.get_origin(member) is list:
            (item,) = typing.get_args(member)
            if _is_model(item):
                return item, "[]"
    return None


def type_name(annotation: Any) -> str:
    members = _members(annotation)
    if len(members) > 1:
        return " | ".join(type_name(member) for member in members)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(value) for value in typing.get_args(annotation))
    if origin is list:
        return f"list[{type_name(typing.get_args(annotation)[0])}]"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"dict[{type_name(key)}, {type_name(value)}]"
    if _is_model(annotation):
        if issubclass(annotation, RootModel):
            return type_name(annotation.model_fields["root"].annotation)
        return "mapping"
    return _SCALAR_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(field: FieldInfo) -> list[str]:
    found = []
    for item in field.metadata:
        for attribute, symbol in _CONSTRAINTS:
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{symbol} {value}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            found.append(f"pattern `{pattern}`")
    return found


def reference(model: type[BaseModel] = AuxipConfig, prefix: str = "") -> list[ConfigKey]:
    """Every key of `model`, depth first in declaration order; a nested section's row comes before its keys."""
    comments = field_comments(model)
    keys: list[ConfigKey] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        nested = _nested(annotation)
        required = field.is_required()
        default = None if required else to_jsonable_python(field.get_default(call_default_factory=True))
        description = comments.get(name) or field.description or ""
        if nested is not None and not description:
            # The section's own docstring only: an undocumented one would otherwise show pydantic's BaseModel doc.
            description = inspect.cleandoc(nested[0].__dict__.get("__doc__") or "").split("\n")[0]
        keys.append(
            ConfigKey(
                path,
                ", ".join([type_name(annotation), *_constraints(field)]),
                default,
                required,
                description,
                section=nested is not None,
            )
        )
        if nested is not None:
            keys.extend(reference(nested[0], f"{path}{nested[1]}."))
    return keys


def leaf_paths(keys: list[ConfigKey]) -> list[str]:
    return [key.path for key in keys if not key.section]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_text(key: ConfigKey) -> str:
    if key.required:
        return REQUIRED
    if key.section and isinstance(key.default, dict):
        return "see its keys"
    if key.section and isinstance(key.default, list) and key.default:
        return f"{len(key.default)} built-in entries (`--format json` shows them)"
    return f"`{json.dumps(key.default)}`"


def markdown(keys: list[ConfigKey] | None = None) -> str:
    rows = [
        "Every key can also be set from the environment: `AUXIP_` then the path in capitals with `__` between "
        "levels (`AUXIP_API__LISTEN=0.0.0.0:8080`). Generated by `auxip config reference`.",
        "",
        "| Key | Type | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    for key in keys if keys is not None else reference():
        cells = (f"`{key.path}`", _cell(key.type), _cell(default_text(key)), _cell(key.description))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def as_json(keys: list[ConfigKey] | None = None) -> list[dict[str, Any]]:
    return [
        {"path": k.path, "type": k.type, "default": k.default, "required": k.required, "description": k.description}
        for k in (keys if keys is not None else reference())
    ]


def marked_section(text: str) -> str | None:
    """The text between the markers, or None when the document has none."""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return text[start + len(START_MARKER) : end]


def replace_section(text: str, generated: str) -> str:
    """`text` with the marked section replaced by `generated`; raises `MarkersMissingError` without markers."""
    if marked_section(text) is None:
        raise MarkersMissingError(f"no {START_MARKER} ... {END_MARKER} section to replace")
    head, _, rest = text.partition(START_MARKER)
    _, _, tail = rest.partition(END_MARKER)
    return f"{head}{START_MARKER}\n{generated}{END_MARKER}{tail}"

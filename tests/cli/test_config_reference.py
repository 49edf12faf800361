"""The configuration reference covers every key of the models with its default, and README.md carries it current."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest
from pydantic import BaseModel, RootModel
from pydantic_core import PydanticUndefined, to_jsonable_python
from typer.testing import CliRunner

from auxip import config_reference
from auxip.cli import app
from auxip.config import AuxipConfig, S3Config
from auxip.ingest.sources.settings import SourceSettings

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"
#: Keys inside each kind of nesting the reference must reach into: lists of sections, unions, sections of sections.
REACHED = (
    "sources[].url", "scanner.url", "ingest.max_attempts", "retention.per_type", "bus.url",
    "auth.token_lifetime_seconds", "quotas.max_bytes_per_day", "storage.s3.region",
    "ingest.archive_limits.max_entries", "ingest.transform_rules[].level", "auth.keycloak[].issuer",
)  # fmt: skip


def model_of(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """Written apart from the module's own walk, so a key the module skips cannot also be skipped here."""
    members = (
        typing.get_args(annotation) if typing.get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    )
    for member in members:
        if typing.get_origin(member) is list and isinstance(typing.get_args(member)[0], type):
            member, suffix = typing.get_args(member)[0], "[]"
        else:
            suffix = ""
        if isinstance(member, type) and issubclass(member, RootModel):
            inner = model_of(member.model_fields["root"].annotation)
            return (inner[0], "[]") if inner else None
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member, suffix
    return None


def leaves(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> default (PydanticUndefined when required) of every leaf key."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        nested = model_of(field.annotation)
        if nested is not None:
            found.update(leaves(nested[0], f"{prefix}{name}{nested[1]}."))
        else:
            found[f"{prefix}{name}"] = (
                field.get_default(call_default_factory=True) if not field.is_required() else PydanticUndefined
            )
    return found


def test_markdown_has_a_row_for_every_leaf_key_with_its_default() -> None:
    expected = leaves(AuxipConfig)
    for path in REACHED:
        assert path in expected
    rows = {
        line.split(" | ")[0].removeprefix("| ").strip("`"): line.split(" | ")
        for line in config_reference.markdown().splitlines()
        if line.startswith("| `")
    }
    for path, default in expected.items():
        assert path in rows, f"{path} is missing from the reference"
        cell = rows[path][2]
        if default is PydanticUndefined:
            assert cell == "required", path
        else:
            assert cell == f"`{json.dumps(to_jsonable_python(default))}`".replace("|", "\\|"), path


def test_descriptions_come_from_the_comments_above_the_fields() -> None:
    assert config_reference.field_comments(S3Config)["access_key_env"] == (
        "Credentials are read from these environment variables, never from the file."
    )
    comments = config_reference.field_comments(SourceSettings)
    assert comments["url"].startswith("`file:///dir`, `sftp://host:port/dir`")
    assert comments["url"].endswith("(another AUXIP or PRIP).")  # both comment lines, joined
    assert comments["name"] == "Unique; routes refer to it."
    assert "region" not in comments  # no comment of its own: nothing borrowed from the field above it
    keys = {key.path: key for key in config_reference.reference()}
    assert keys["api.max_page_size"].type == "integer, >= 1000, <= 10000"
    assert keys["scanner"].type == 'mapping | "disabled" | null'
    assert keys["sources[].settle_seconds"].description.startswith("A file counts as complete once unchanged")


def test_cli_prints_markdown_and_json() -> None:
    markdown = runner.invoke(app, ["config", "reference"])
    assert markdown.exit_code == 0
    assert markdown.output == config_reference.markdown()
    as_json = runner.invoke(app, ["config", "reference", "--format", "json"])
    rules = next(key for key in json.loads(as_json.output) if key["path"] == "ingest.transform_rules")
    assert rules["default"][-1]["product_types"] == ["*"]
    assert runner.invoke(app, ["config", "reference", "--format", "yaml"]).exit_code == 2


def test_write_replaces_only_the_marked_section(tmp_path: Path) -> None:
    document = tmp_path / "README.md"
    start, end = config_reference.START_MARKER, config_reference.END_MARKER
    document.write_text(f"# Title\n\n{start}\nold table\n{end}\n\nAfter.\n")
    result = runner.invoke(app, ["config", "reference", "--write", str(document)])
    assert result.exit_code == 0, result.output
    assert document.read_text() == f"# Title\n\n{start}\n{config_reference.markdown()}{end}\n\nAfter.\n"
    document.write_text("# no markers\n")
    missing = runner.invoke(app, ["config", "reference", "--write", str(document)])
    assert missing.exit_code == 1
    assert "no <!-- config-reference:start --> ... <!-- config-reference:end --> section" in missing.output


def test_readme_section_is_current() -> None:
    section = config_reference.marked_section(README.read_text()) if README.is_file() else None
    if section is None:
        pytest.skip(
            f"{README} has no {config_reference.START_MARKER} ... {config_reference.END_MARKER} section yet; "
            "add the two markers, then run `auxip config reference --write README.md`"
        )
    assert section.strip() == config_reference.markdown().strip(), (
        "README.md's configuration reference is stale: run `auxip config reference --write README.md`"
    )

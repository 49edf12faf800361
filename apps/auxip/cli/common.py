"""What every `auxip` command shares: the --config/--json options, exit codes, loading the config and the catalog."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine

from auxip.catalog.migrate import SchemaMismatchError, make_engine, prepare
from auxip.config import AuxipConfig, ConfigError, load_config

#: Exit codes of every command (also in `auxip --help`).
OK: Final = 0
FAILED: Final = 1  # the operation failed, or what it names does not exist
USAGE: Final = 2  # bad arguments or an invalid configuration (typer's own usage errors use 2 too)
EXIT_CODES_HELP: Final = "Exit codes: 0 success, 1 operation failed or not found, 2 usage or configuration error."

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def fail(message: str, code: int = FAILED) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load(path: Path | None) -> AuxipConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), USAGE)


def open_catalog(config: AuxipConfig) -> Engine:
    """The catalog engine at this release's schema: migrated when `catalog.migrate` is on (a fresh data dir becomes
    an empty catalog), checked otherwise; a catalog of another release exits 2 with what to do."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        prepare(config.catalog_url, config.catalog.migrate)
    except SchemaMismatchError as exc:
        fail(str(exc), USAGE)
    return make_engine(config.catalog_url)


def echo_json(document: Any) -> None:
    typer.echo(json.dumps(document))


def progress_console() -> Console:
    """Progress bars go to stderr, so `--json` on stdout stays parseable; rich hides them when stderr is no tty."""
    return Console(stderr=True)


def table_console() -> Console:
    """Tables on stdout; piped output keeps whole product names on a line instead of wrapping at 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 240)

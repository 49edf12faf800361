"""`auxip`: the operator command line (serve, status, users, config, quarantine, products, sources, backup/restore).

Exit codes, for every command: 0 success, 1 the operation failed or what it names does not exist, 2 bad usage or
an invalid configuration. Commands that print data take `--json`.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from auxip import config_reference
from auxip.api.app import Services, build_process
from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.migrate import SchemaMismatchError, prepare, schema_revisions
from auxip.catalog.restore import RestoreConflictError
from auxip.cli.backup import BackupError, RestoreRefusedError, restore_backup, write_backup
from auxip.cli.common import (
    EXIT_CODES_HELP,
    FAILED,
    USAGE,
    ConfigOption,
    JsonOption,
    echo_json,
    fail,
    load,
    open_catalog,
    progress_console,
    table_console,
)
from auxip.cli.products import products_app
from auxip.cli.sources import sources_app
from auxip.config import PROCESS_ROLES, AuxipConfig
from auxip.ingest import quarantine as quarantine_store
from auxip.ingest.service import pipeline_status
from auxip.logs import configure as configure_logging
from auxip.routing.engine import delivery_counts, list_deliveries, retry_dead
from auxip.routing.models import DELIVERY_STATES

app = typer.Typer(help=f"Copernicus Sentinel-1 AUXIP operator commands. {EXIT_CODES_HELP}", no_args_is_help=True)
users_app = typer.Typer(help="Local users (Basic auth and the embedded token endpoint).", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Files the pipeline refused: list, release, purge.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(config_app, name="config")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(products_app, name="products")
app.add_typer(sources_app, name="sources")
routes_app = typer.Typer(help="Routing deliveries: list them, retry the dead-lettered ones.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")


def _store(config: AuxipConfig) -> LocalIdentityStore:
    return LocalIdentityStore(open_catalog(config))


ServeRole = enum.Enum("ServeRole", {role: role for role in PROCESS_ROLES}, type=str)  # type: ignore[misc]
RoleOption = Annotated[
    list[ServeRole] | None,
    typer.Option("--role", help="what this process runs (repeatable; default: the config's `roles`, all of them)"),
]


@app.command()
def serve(config_path: ConfigOption = None, role: RoleOption = None) -> None:
    """Run the AUXIP until interrupted: the API, ingestion, routing, notifications and eviction, or the given roles."""
    config = load(config_path)
    if role:
        config = config.with_roles(choice.value for choice in role)
    configure_logging(config.log_format)
    engine = open_catalog(config)
    services = Services(engine=engine, storage=config.open_storage(), store=LocalIdentityStore(engine))
    application = build_process(config, services)
    web.run_app(application, host=config.api.host, port=config.api.port, print=None, access_log=None)


@app.command()
def migrate(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Migrate the catalog to this release's schema (once per release: on a cluster, the migration Job)."""
    config = load(config_path)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        before, head = schema_revisions(config.catalog_url)
        prepare(config.catalog_url, migrate=True)
    except SchemaMismatchError as exc:
        fail(str(exc), USAGE)
    result = {"from": before, "to": head}
    typer.echo(json.dumps(result) if as_json else f"catalog schema {before or 'none'} -> {head}")


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="download, reporting or admin (repeatable)")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a local user."""
    if not password_stdin:
        typer.echo("give the password on standard input with --password-stdin", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        typer.echo("empty password on standard input", err=True)
        raise typer.Exit(2)
    by_name = {r.value.lower(): r for r in Role}
    unknown = [name for name in role if name.lower() not in by_name]
    if unknown or not role:
        typer.echo(f"--role must be one of {', '.join(sorted(by_name))}; got {', '.join(unknown) or 'none'}", err=True)
        raise typer.Exit(2)
    roles = frozenset(by_name[name.lower()] for name in role)
    info = _store(load(config_path)).add_user(name, password, roles)
    result = {"username": info.username, "roles": sorted(r.value for r in info.roles)}
    typer.echo(json.dumps(result) if as_json else f"added {info.username} ({', '.join(result['roles'])})")


@users_app.command("list")
def users_list(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List local users."""
    users = _store(load(config_path)).list_users()
    if as_json:
        rows = [
            {"username": u.username, "roles": sorted(r.value for r in u.roles), "disabled": u.disabled} for u in users
        ]
        typer.echo(json.dumps(rows))
        return
    for user in users:
        state = "disabled" if user.disabled else "enabled"
        typer.echo(f"{user.username}\t{','.join(sorted(r.value for r in user.roles))}\t{state}")


@users_app.command("remove")
def users_remove(name: str, config_path: ConfigOption = None) -> None:
    """Remove a local user (exit code 1 if there was none)."""
    if not _store(load(config_path)).remove_user(name):
        typer.echo(f"no user {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name}")


@config_app.command("check")
def config_check(path: Path, as_json: JsonOption = False) -> None:
    """Validate a configuration file; errors name the offending key."""
    config = load(path)
    summary = {"data_dir": str(config.data_dir), "listen": config.api.listen, "catalog": config.catalog_url}
    typer.echo(json.dumps(summary) if as_json else f"{path}: valid ({config.api.listen}, catalog {config.catalog_url})")


@app.command()
def status(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Items per pipeline state, backlog, publication rates, latest errors, quarantine and deliveries."""
    config = load(config_path)
    engine = open_catalog(config)
    summary = {
        **pipeline_status(engine),
        "quarantined": len(quarantine_store.list_entries(engine)),
        "deliveries": delivery_counts(engine),
    }
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    out = table_console()
    table = Table(title="pipeline")
    table.add_column("state")
    table.add_column("items", justify="right")
    for state, count in sorted(summary["stages"].items()):
        table.add_row(state, str(count))
    out.print(table)
    rates = summary["published"]
    out.print(
        f"backlog {summary['backlog']}   published in the last 5 min {rates['last_5_minutes']}, "
        f"last hour {rates['last_hour']}   held in quarantine {summary['quarantined']}"
    )
    if summary["deliveries"]:
        out.print(
            "deliveries " + ", ".join(f"{state} {count}" for state, count in sorted(summary["deliveries"].items()))
        )
    for error in summary["last_errors"]:
        out.print(f"[yellow]{error['source']}:{error['name']}[/] ({error['state']}, {error['attempts']} attempts): "
                  f"{error['last_error']}", highlight=False)  # fmt: skip


@quarantine_app.command("list")
def quarantine_list(
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
    all_entries: Annotated[bool, typer.Option("--all", help="released and purged entries too")] = False,
) -> None:
    """Entries held in quarantine with their reason (all entries with --all)."""
    entries = quarantine_store.list_entries(open_catalog(load(config_path)), None if all_entries else "held")
    if as_json:
        typer.echo(json.dumps([entry.as_dict() for entry in entries]))
        return
    for entry in entries:
        typer.echo(f"{entry.id}\t{entry.status}\t{entry.reason}\t{entry.source}\t{entry.name}\t{entry.detail}")


def _quarantine_action(action: str, entry_id: int, config_path: Path | None, actor: str) -> None:
    config = load(config_path)
    engine = open_catalog(config)
    try:
        if action == "release":
            quarantine_store.release(engine, config.data_dir / "quarantine", config.staging_dir, entry_id, actor)
        else:
            quarantine_store.purge(engine, config.data_dir / "quarantine", entry_id, actor)
    except quarantine_store.QuarantineActionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{action}d quarantine entry {entry_id}")


ActorOption = Annotated[str, typer.Option("--actor", help="who does it, for the audit trail")]


@quarantine_app.command("release")
def quarantine_release(entry_id: int, config_path: ConfigOption = None, actor: ActorOption = "operator") -> None:
    """Send the file back into the pipeline at the stage that refused it (audited)."""
    _quarantine_action("release", entry_id, config_path, actor)


@quarantine_app.command("purge")
def quarantine_purge(entry_id: int, config_path: ConfigOption = None, actor: ActorOption = "operator") -> None:
    """Delete the refused file for good; the entry and its audit trail stay."""
    _quarantine_action("purge", entry_id, config_path, actor)


class ReferenceFormat(enum.Enum):
    MARKDOWN = "markdown"
    JSON = "json"


@config_app.command("reference")
def config_reference_command(
    output_format: Annotated[ReferenceFormat, typer.Option("--format", help="a Markdown table, or JSON")] = (
        ReferenceFormat.MARKDOWN
    ),
    write: Annotated[
        Path | None, typer.Option("--write", help="replace the config-reference section of this file (README.md)")
    ] = None,
) -> None:
    """Every configuration key with its type, default and description, generated from the models."""
    if write is not None:
        try:
            updated = config_reference.replace_section(write.read_text(), config_reference.markdown())
        except (OSError, config_reference.MarkersMissingError) as exc:
            fail(f"{write}: {exc}")
        write.write_text(updated)
        typer.echo(f"{write}: configuration reference updated")
    elif output_format is ReferenceFormat.JSON:
        echo_json(config_reference.as_json())
    else:
        typer.echo(config_reference.markdown(), nl=False)


def _steps() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=progress_console(), transient=True)


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="a new or empty directory")],
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export the catalog (products with checksums and attributes, users, subscriptions) as JSON lines.

    One consistent snapshot, written with a manifest of row counts and SHA256s. Product bytes are NOT included:
    they live in object storage, which is backed up by the storage layer (S3 versioning or replication, a copy of
    the local products directory). The files hold password hashes and subscription endpoint passwords: they are
    written readable by their owner only; keep them so. Ingestion state and download records are not included.
    """
    engine = open_catalog(load(config_path))
    try:
        with _steps() as progress:
            manifest = write_backup(engine, to, progress)
    except (BackupError, OSError) as exc:
        fail(str(exc))
    counts = {name: rows for name, (rows, _digest) in manifest.files.items()}
    if as_json:
        echo_json({"directory": str(to), **manifest.as_json()})
        return
    typer.echo(f"backup written to {to}: " + ", ".join(f"{rows} {name}" for name, rows in counts.items()))


@app.command()
def restore(
    source: Annotated[Path, typer.Option("--from", help="a directory written by `auxip backup`")],
    force: Annotated[bool, typer.Option("--force", help="merge into a catalog that is not empty")] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into an empty catalog, keeping product Ids and PublicationDates; then check the counts.

    The files are checked against the manifest first (a damaged backup changes nothing). A catalog with products,
    users or subscriptions is refused (exit 1) unless --force, which skips what is already there and fails on a
    product whose Name or Id is taken by another one. Restore before pollers are let in. Product bytes are restored
    by the storage layer, not by this command.
    """
    engine = open_catalog(load(config_path))
    try:
        with _steps() as progress:
            counts = restore_backup(engine, source, force=force, progress=progress)
    except (BackupError, RestoreRefusedError, RestoreConflictError, OSError) as exc:
        fail(str(exc))
    if as_json:
        echo_json({"restored_from": str(source), "rows": counts})
        return
    typer.echo(f"restored {source}: catalog now holds " + ", ".join(f"{n} {name}" for name, n in counts.items()))


@routes_app.command("list")
def routes_list(
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
    state: Annotated[str | None, typer.Option("--state", help="pending, delivered or dead")] = None,
) -> None:
    """Deliveries of the configured routes, one per (file, target), with attempts and the last error."""
    if state is not None and state not in DELIVERY_STATES:
        fail(f"--state must be one of {', '.join(DELIVERY_STATES)}", USAGE)
    deliveries = list_deliveries(open_catalog(load(config_path)), state)
    if as_json:
        typer.echo(json.dumps(deliveries))
        return
    out = table_console()
    table = Table(title="deliveries")
    for column in ("id", "route", "target", "file", "state", "attempts", "last error"):
        table.add_column(column)
    for row in deliveries:
        table.add_row(str(row["id"]), row["route"], row["target"], row["file_name"], row["state"],
                      str(row["attempts"]), (row["last_error"] or "")[:80])  # fmt: skip
    out.print(table)


@routes_app.command("retry")
def routes_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="dead-lettered delivery ids (none: every dead one)")] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put dead-lettered deliveries back with a fresh attempt budget (exit 1 when none matched)."""
    count = retry_dead(open_catalog(load(config_path)), ids or None)
    typer.echo(json.dumps({"retried": count}) if as_json else f"{count} deliveries back in the queue")
    if count == 0:
        raise typer.Exit(FAILED)


def main() -> None:
    app()

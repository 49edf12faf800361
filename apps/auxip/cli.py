"""`auxip`: the operator command line (serve, users, config check)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web
from sqlalchemy import Engine

from auxip.api.app import Services, build_app, run_ingestion, run_subscription_worker
from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.migrate import make_engine, upgrade
from auxip.config import AuxipConfig, ConfigError, load_config
from auxip.ingest import quarantine as quarantine_store
from auxip.ingest.bus import open_bus
from auxip.ingest.service import IngestService, stage_counts
from auxip.logs import configure as configure_logging

app = typer.Typer(help="Copernicus Sentinel-1 AUXIP operator commands.", no_args_is_help=True)
users_app = typer.Typer(help="Local users (Basic auth and the embedded token endpoint).", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Files the pipeline refused: list, release, purge.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(config_app, name="config")
app.add_typer(quarantine_app, name="quarantine")

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _config(path: Path | None) -> AuxipConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _engine(config: AuxipConfig) -> Engine:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.catalog_url)
    return make_engine(config.catalog_url)


def _store(config: AuxipConfig) -> LocalIdentityStore:
    return LocalIdentityStore(_engine(config))


@app.command()
def serve(config_path: ConfigOption = None) -> None:
    """Run the API and the subscription worker until interrupted."""
    config = _config(config_path)
    configure_logging(config.log_format)
    engine = _engine(config)
    storage = config.open_storage()
    services = Services(engine=engine, storage=storage, store=LocalIdentityStore(engine))
    application = build_app(config, services)
    run_subscription_worker(application, interval=2.0)
    if config.sources:
        run_ingestion(
            application,
            IngestService(config, engine, storage, open_bus(config.bus.url, engine, config.bus.topic_prefix)),
        )
    web.run_app(application, host=config.api.host, port=config.api.port, print=None, access_log=None)


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
    info = _store(_config(config_path)).add_user(name, password, roles)
    result = {"username": info.username, "roles": sorted(r.value for r in info.roles)}
    typer.echo(json.dumps(result) if as_json else f"added {info.username} ({', '.join(result['roles'])})")


@users_app.command("list")
def users_list(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List local users."""
    users = _store(_config(config_path)).list_users()
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
    if not _store(_config(config_path)).remove_user(name):
        typer.echo(f"no user {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name}")


@config_app.command("check")
def config_check(path: Path, as_json: JsonOption = False) -> None:
    """Validate a configuration file; errors name the offending key."""
    config = _config(path)
    summary = {"data_dir": str(config.data_dir), "listen": config.api.listen, "catalog": config.catalog_url}
    typer.echo(json.dumps(summary) if as_json else f"{path}: valid ({config.api.listen}, catalog {config.catalog_url})")


@app.command()
def status(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Items per pipeline state and files held in quarantine."""
    config = _config(config_path)
    engine = _engine(config)
    stages = stage_counts(engine)
    held = len(quarantine_store.list_entries(engine))
    if as_json:
        typer.echo(json.dumps({"stages": stages, "quarantined": held}))
        return
    for state, count in sorted(stages.items()):
        typer.echo(f"{state}\t{count}")
    typer.echo(f"held in quarantine\t{held}")


@quarantine_app.command("list")
def quarantine_list(
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
    all_entries: Annotated[bool, typer.Option("--all", help="released and purged entries too")] = False,
) -> None:
    """Entries held in quarantine with their reason (all entries with --all)."""
    entries = quarantine_store.list_entries(_engine(_config(config_path)), None if all_entries else "held")
    if as_json:
        typer.echo(json.dumps([entry.as_dict() for entry in entries]))
        return
    for entry in entries:
        typer.echo(f"{entry.id}\t{entry.status}\t{entry.reason}\t{entry.source}\t{entry.name}\t{entry.detail}")


def _quarantine_action(action: str, entry_id: int, config_path: Path | None, actor: str) -> None:
    config = _config(config_path)
    engine = _engine(config)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

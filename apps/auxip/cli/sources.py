"""`auxip sources list|test`: the configured sources with their persisted state, and a one-off listing of one.

`test` lists through the same adapter the pipeline uses (`open_source`), so an error is the one the pipeline would
meet, classified as it would classify it (permanent, transient, credentials, timeout). It records nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.table import Table
from sqlalchemy import Engine, func, select

from auxip.cli.common import (
    EXIT_CODES_HELP,
    ConfigOption,
    JsonOption,
    echo_json,
    fail,
    load,
    open_catalog,
    table_console,
)
from auxip.ingest.models import IngestItem, SourceState
from auxip.ingest.sources.base import PermanentSourceError, SourceError, TransientSourceError
from auxip.ingest.sources.credentials import CredentialsError
from auxip.ingest.sources.factory import open_source
from auxip.ingest.sources.settings import SourceSettings

sources_app = typer.Typer(help=f"Configured ingestion sources. {EXIT_CODES_HELP}", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A configured source and what the pipeline persisted about it (None: never polled)."""

    name: str
    url: str
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    circuit_open_until: datetime | None = None
    cursor: datetime | None = None
    last_error: str | None = None
    #: Items discovered from this source, by pipeline state.
    items: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class SourceProbe:
    """The outcome of one listing: complete entries and their first names, or the classified error."""

    source: str
    complete: int = 0
    first: list[str] = field(default_factory=list)
    #: permanent, transient, credentials or timeout.
    error_kind: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def display_url(url: str) -> str:
    """The URL without a password, should one be written in it (credentials belong in `credentials:`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def source_statuses(engine: Engine, sources: Sequence[SourceSettings]) -> list[SourceStatus]:
    names = [source.name for source in sources]
    with engine.connect() as conn:
        states = {row.source: row for row in conn.execute(select(SourceState).where(SourceState.source.in_(names)))}
        counts: dict[str, dict[str, int]] = {name: {} for name in names}
        grouped = conn.execute(
            select(IngestItem.source, IngestItem.state, func.count())
            .where(IngestItem.source.in_(names))
            .group_by(IngestItem.source, IngestItem.state)
        )
        for source, state, count in grouped:
            counts[source][state] = int(count)
    statuses = []
    for source in sources:
        state = states.get(source.name)
        if state is None:
            statuses.append(SourceStatus(source.name, display_url(source.url), items=counts[source.name]))
            continue
        statuses.append(
            SourceStatus(
                source.name,
                display_url(source.url),
                last_poll_at=state.last_poll_at,
                last_success_at=state.last_success_at,
                consecutive_failures=state.consecutive_failures,
                circuit_open_until=state.open_until,
                cursor=state.cursor,
                last_error=state.last_error,
                items=counts[source.name],
            )
        )
    return statuses


def _classify(exc: Exception) -> str:
    if isinstance(exc, CredentialsError):
        return "credentials"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, TransientSourceError):
        return "transient"
    return "permanent" if isinstance(exc, PermanentSourceError) else "failed"


async def probe_source(settings: SourceSettings, cursor: datetime | None, *, show: int, timeout: float) -> SourceProbe:
    """List `settings` once (from `cursor` for sources that page by PublicationDate); never raises a source error."""
    names: list[str] = []

    async def listing() -> None:
        source = open_source(settings)
        try:
            if hasattr(source, "cursor"):
                source.cursor = cursor  # as discovery does: an OData source is not re-listed from its beginning
            async for entry in source.list():
                names.append(entry.name)
        finally:
            await source.close()

    try:
        await asyncio.wait_for(listing(), timeout)
    except TimeoutError:
        message = f"{settings.name}: no complete listing within {timeout:g} s"
        return SourceProbe(settings.name, len(names), names[:show], "timeout", message)
    except (SourceError, CredentialsError) as exc:
        return SourceProbe(settings.name, len(names), names[:show], _classify(exc), str(exc))
    return SourceProbe(settings.name, len(names), names[:show])


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


@sources_app.command("list")
def sources_list(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Configured sources: last poll, last success, failures, circuit, cursor and item counts by state."""
    config = load(config_path)
    statuses = source_statuses(open_catalog(config), config.sources)
    if as_json:
        echo_json([status.as_dict() for status in statuses])
        return
    table = Table("Name", "URL", "Last poll", "Last success", "Failures", "Circuit open until", "Cursor", "Items")
    for status in statuses:
        items = ", ".join(f"{state} {count}" for state, count in sorted(status.items.items())) or "-"
        table.add_row(
            status.name,
            status.url,
            _when(status.last_poll_at),
            _when(status.last_success_at),
            str(status.consecutive_failures),
            _when(status.circuit_open_until),
            _when(status.cursor),
            items,
        )
    console = table_console()
    console.print(table)
    for status in statuses:
        if status.last_error:
            console.print(f"{status.name}: last error: {status.last_error}")


@sources_app.command("test")
def sources_test(
    name: Annotated[str, typer.Argument(help="a source name from the configuration")],
    show: Annotated[int, typer.Option("--show", min=0, help="how many entry names to print")] = 5,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="seconds the whole listing may take")] = 60.0,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Connect to one source and list it once (nothing is recorded); exit 1 with the classified error on failure."""
    config = load(config_path)
    settings = next((source for source in config.sources if source.name == name), None)
    if settings is None:
        configured = ", ".join(source.name for source in config.sources) or "none"
        fail(f"no source named {name} in the configuration (configured: {configured})")
    engine = open_catalog(config)
    with engine.connect() as conn:
        cursor = conn.execute(select(SourceState.cursor).where(SourceState.source == name)).scalar_one_or_none()
    probe = asyncio.run(probe_source(settings, cursor, show=show, timeout=timeout))
    if as_json:
        echo_json(
            {"source": probe.source, "ok": probe.ok, "complete": probe.complete, "first": probe.first,
             "error_kind": probe.error_kind, "error": probe.error}
        )  # fmt: skip
    elif probe.ok:
        typer.echo(f"{name}: {probe.complete} complete entries")
        for entry_name in probe.first:
            typer.echo(f"  {entry_name}")
    if not probe.ok:
        if not as_json:
            typer.echo(f"{name}: {probe.error_kind} error: {probe.error}", err=True)
        raise typer.Exit(1)

"""A throw-away PostgreSQL 15 cluster (Debian's postgresql-15) on loopback, one per test session.

`run_postgres()` works outside pytest (benchmarks, local experiments); the `postgres` fixture wraps it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from auxip_testing.process import ManagedProcess, free_port, running

PG_BIN = Path(os.environ.get("AUXIP_PG_BIN", "/usr/lib/postgresql/15/bin"))
# initdb and postgres refuse to run as root, so the cluster belongs to the packaged service account.
OS_USER = "postgres"
DB_USER = "auxip"
DB_NAME = "auxip"

# Durability is irrelevant for a cluster that is deleted after the session; skipping it makes DDL-heavy tests fast.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    "log_connections": "off",
}


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str
    socket_dir: Path

    @property
    def dsn(self) -> str:
        """libpq URL (psycopg, psql, asyncpg)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def _admin(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    def create_database(self, prefix: str) -> PostgresServer:
        """A new empty database with a unique name on this cluster, as a handle pointing at it."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return dataclasses.replace(self, dbname=name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _require_binaries() -> None:
    for name in ("initdb", "postgres"):
        if not (PG_BIN / name).is_file():
            raise FileNotFoundError(f"{PG_BIN / name} is missing: apt-get install postgresql-15")
    try:
        pwd.getpwnam(OS_USER)
    except KeyError as exc:
        raise RuntimeError(f"OS user {OS_USER!r} is missing: apt-get install postgresql-15") from exc


def _private_dir() -> Path:
    """A temp dir owned by the postgres account (pytest's tmp_path is root-only 0700, unreadable for it)."""
    root = Path(tempfile.mkdtemp(prefix="auxip-pg-"))
    account = pwd.getpwnam(OS_USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    return root


def _initdb(datadir: Path, log: Path) -> None:
    argv = [
        str(PG_BIN / "initdb"),
        f"--pgdata={datadir}",
        f"--username={DB_USER}",
        "--auth=trust",  # loopback-only, throw-away cluster: no password to generate or leak
        "--encoding=UTF8",
        "--no-locale",  # C collation: deterministic ORDER BY regardless of the host locale
        "--no-sync",
    ]
    with log.open("wb") as out:
        result = subprocess.run(argv, user=OS_USER, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{log.read_text(errors='replace')}")


def _postgres_process(root: Path, port: int) -> ManagedProcess:
    # postgres runs in the foreground so ManagedProcess owns its PID; no pg_ctl daemonising.
    settings = {**SETTINGS, "port": str(port), "unix_socket_directories": str(root)}
    argv = [str(PG_BIN / "postgres"), "-D", str(root / "data")]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return ManagedProcess(name=f"postgres:{port}", argv=argv, log_path=root / "postgres.log", user=OS_USER)


def _can_query(server: PostgresServer, dbname: str) -> bool:
    # A real login + query, because the port opens before recovery finishes and connections are still refused.
    conninfo = f"host={server.host} port={server.port} user={server.user} dbname={dbname} connect_timeout=2"
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _create_database(server: PostgresServer) -> None:
    with psycopg.connect(server._admin(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{server.dbname}"')


def _fast_shutdown(process: ManagedProcess) -> None:
    """SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients that tests forgot to close, then exits."""
    if process.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            assert process.popen is not None
            process.popen.wait(15)


@contextlib.contextmanager
def run_postgres(timeout: float = 60.0) -> Iterator[PostgresServer]:
    """Start a fresh cluster with database `auxip`; stop it and delete its files on exit."""
    _require_binaries()
    root = _private_dir()
    try:
        _initdb(root / "data", root / "initdb.log")
        port = free_port()
        server = PostgresServer(host="127.0.0.1", port=port, user=DB_USER, dbname=DB_NAME, socket_dir=root)
        process = _postgres_process(root, port)
        with running(process, lambda: _can_query(server, "postgres"), timeout):
            try:
                _create_database(server)
                yield server
            finally:
                _fast_shutdown(process)  # then running() stops whatever is left of the process group
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with run_postgres() as server:
        yield server

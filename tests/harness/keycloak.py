"""Keycloak (Quarkus distribution from Maven Central) on loopback, with the repository's `auxip` realm imported.

Why it looks like this:
- The distribution zip (`org.keycloak:keycloak-quarkus-dist`, ~177 MB) is the official server; Maven fetches it into
  ~/.m2 and it is unpacked once per version under `cache_root()`.
- Keycloak 26.7.3 still runs on Java 17 (its bytecode targets 17 and the server starts and passes these tests on the
  Debian JDK). Upstream plans to drop Java 17 and 21 in a later major (keycloak/keycloak#52369); set
  `AUXIP_KEYCLOAK_JAVA_HOME` (e.g. /usr/lib/jvm/temurin-25-jdk-amd64) to run it on another JDK.
- `kc.sh build` (Quarkus augmentation, ~25 s) runs once at cache time with the build-time options, so every session
  runs `start --optimized`.
- A fresh H2 database costs ~7 s of Liquibase schema creation and master-realm setup per start, so the cache also
  keeps a template database made by one throw-away start; each session copies it. Keycloak only creates its bootstrap
  admin when it creates the master realm, so that admin is made with the template and its random credentials live in
  the cache (`template/admin.json`, mode 0600, loopback-only use), never in the repository.
- Per session: a private Keycloak home (symlinks to the cached `lib`, `conf`, `providers`, `themes`, a copied `kc.sh`
  because it resolves its home from its own real path, and its own `data/`), the realm file imported with
  `--import-realm`, the `auxip-api` client secret passed through the `${AUXIP_API_CLIENT_SECRET}` placeholder, and a
  test user with role Download created through the admin REST API with a generated password.

`run_keycloak()` works outside pytest (benchmarks, demos); the `keycloak` fixture wraps it for a test session.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from auxip_testing.cache import cache_root, cached_dir, maven_artifact
from auxip_testing.plugin import show_progress
from auxip_testing.process import ManagedProcess, ServiceStartError, free_port, running, scratch_dir, wait_until

KEYCLOAK_VERSION = "26.7.3"
DIST_COORDINATES = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
HOST = "127.0.0.1"
REALM = "auxip"
CLIENT_ID = "auxip-api"
# The name of the `${...}` placeholder for the client secret in realm-auxip.json (a variable name, not a secret).
CLIENT_SECRET_ENV = "AUXIP_API_CLIENT_SECRET"  # noqa: S105
REALM_FILE = Path(__file__).resolve().parents[2] / "security" / "keycloak" / "realm-auxip.json"
# Options Keycloak bakes in at `kc.sh build` time; changing them must change the cache key.
BUILD_OPTIONS = ("--db=dev-file", "--health-enabled=true")
CACHE_KEY = f"keycloak-{KEYCLOAK_VERSION}-devfile-health-v1"
SHARED_HOME_ENTRIES = ("lib", "conf", "providers", "themes")
# kc.sh defaults to a 512 MB heap outside containers; C1 only shortens startup for a short-lived test server.
JAVA_ENV = {
    "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx512m",
    "JAVA_OPTS_APPEND": "-XX:TieredStopAtLevel=1 -XX:-UsePerfData",
}


@dataclass(frozen=True)
class KeycloakServer:
    base_url: str
    realm: str
    client_id: str
    client_secret: str
    username: str
    password: str
    admin_username: str
    admin_password: str
    management_url: str

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def well_known_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def password_grant(self, username: str, password: str, **extra: str) -> requests.Response:
        """POST the resource owner password grant for `auxip-api`; the caller checks the status."""
        form = {
            "grant_type": "password",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "username": username,
            "password": password,
            "scope": "openid",
            **extra,
        }
        return requests.post(self.token_url, data=form, timeout=30)

    def access_token(self, username: str | None = None, password: str | None = None) -> str:
        """An access token for `username` (default: the Download test user)."""
        response = self.password_grant(username or self.username, password or self.password)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def admin_headers(self) -> dict[str, str]:
        """Bearer header for the admin REST API (master realm admin, `admin-cli` client)."""
        form = {
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": self.admin_username,
            "password": self.admin_password,
        }
        response = requests.post(f"{self.base_url}/realms/master/protocol/openid-connect/token", data=form, timeout=30)
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def create_user(self, username: str, password: str, realm_roles: tuple[str, ...] = ()) -> str:
        """Create an enabled user with a permanent password and realm roles; returns the user id."""
        headers = self.admin_headers()
        admin = f"{self.base_url}/admin/realms/{self.realm}"
        # First/last name and a verified e-mail: the default user profile requires them, and a user missing them
        # gets a "VERIFY_PROFILE" required action, which makes the password grant fail ("Account is not fully set up").
        user = {
            "username": username,
            "enabled": True,
            "firstName": username,
            "lastName": "Test",
            "email": f"{username}@auxip.test",
            "emailVerified": True,
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        }
        response = requests.post(f"{admin}/users", json=user, headers=headers, timeout=30)
        response.raise_for_status()
        user_id = response.headers["Location"].rsplit("/", 1)[1]
        roles = [_get_json(f"{admin}/roles/{name}", headers) for name in realm_roles]
        if roles:
            mapping = f"{admin}/users/{user_id}/role-mappings/realm"
            requests.post(mapping, json=roles, headers=headers, timeout=30).raise_for_status()
        return user_id


def _get_json(url: str, headers: Mapping[str, str]) -> Any:
    response = requests.get(url, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def _java_env() -> dict[str, str]:
    java_home = os.environ.get("AUXIP_KEYCLOAK_JAVA_HOME")
    if java_home:
        if not (Path(java_home) / "bin" / "java").is_file():
            raise FileNotFoundError(f"AUXIP_KEYCLOAK_JAVA_HOME={java_home} has no bin/java")
        return {**JAVA_ENV, "JAVA_HOME": java_home}
    if not os.environ.get("JAVA_HOME") and not shutil.which("java"):
        raise FileNotFoundError(
            "java not found: Keycloak needs Java 17+, install the Debian package `openjdk-17-jre-headless`"
        )
    return dict(JAVA_ENV)


def _distribution_zip() -> Path:
    return maven_artifact(DIST_COORDINATES)


def _unpack(archive: Path, target: Path) -> None:
    """Unzip the distribution into `target` (zipfile drops the exec bits, so restore them on the scripts)."""
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(target.parent / "unzip")
    (target.parent / "unzip" / f"keycloak-{KEYCLOAK_VERSION}").rename(target)
    (target.parent / "unzip").rmdir()
    for script in (target / "bin").rglob("*.sh"):
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _run_logged(argv: list[str], env: Mapping[str, str], log: Path, what: str, timeout: float) -> None:
    with log.open("ab") as out:
        result = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            timeout=timeout,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise ServiceStartError(f"{what} failed ({result.returncode}):\n{tail}")


def _private_home(dist: Path, home: Path) -> Path:
    """A Keycloak home sharing the cached, read-only parts of `dist`, with its own `data/`; returns its kc.sh."""
    (home / "bin").mkdir(parents=True)
    (home / "data" / "import").mkdir(parents=True)
    for entry in SHARED_HOME_ENTRIES:
        (home / entry).symlink_to(dist / entry)
    kc_sh = home / "bin" / "kc.sh"
    shutil.copy2(dist / "bin" / "kc.sh", kc_sh)  # kc.sh takes its home from its own path, after resolving links
    return kc_sh


def _start_argv(kc_sh: Path, port: int, management_port: int, *, import_realm: bool) -> list[str]:
    argv = [
        str(kc_sh),
        "start",
        "--optimized",
        "--http-enabled=true",  # plain HTTP on loopback; production mode would otherwise insist on TLS
        f"--http-host={HOST}",
        f"--http-port={port}",
        f"--http-management-port={management_port}",
        f"--hostname=http://{HOST}:{port}",  # a fixed issuer, whatever Host header a client sends
        "--cache=local",  # no Infinispan/JGroups cluster discovery
    ]
    return [*argv, "--import-realm"] if import_realm else argv


def _answers_200(url: str) -> Callable[[], bool]:
    # Keycloak answers 503 while it bootstraps (schema, realm import); 200 means the realm is fully there.
    return lambda: requests.get(url, timeout=5).status_code == 200


def _make_template(dist: Path, work: Path, env: Mapping[str, str]) -> None:
    """Start the server once on an empty H2 database and keep the database (schema + master realm + admin)."""
    admin = {"username": f"admin-{secrets.token_hex(3)}", "password": secrets.token_urlsafe(24)}
    home = work / "template-home"
    kc_sh = _private_home(dist, home)
    port = free_port()
    env = {**env, "KC_BOOTSTRAP_ADMIN_USERNAME": admin["username"], "KC_BOOTSTRAP_ADMIN_PASSWORD": admin["password"]}
    argv = _start_argv(kc_sh, port, free_port(), import_realm=False)
    process = ManagedProcess(name="keycloak-template", argv=argv, log_path=work / "template.log", env=env)
    with running(process, _answers_200(f"http://{HOST}:{port}/realms/master"), timeout=300):
        pass  # running() stops it with SIGTERM, on which Keycloak closes H2 cleanly
    if process.popen is not None and process.popen.returncode == -signal.SIGKILL:
        raise ServiceStartError(f"Keycloak had to be killed: its H2 database may be torn\n{process.log_tail()}")
    template = work / "template"
    shutil.copytree(home / "data" / "h2", template / "h2")
    shutil.rmtree(home)
    credentials = template / "admin.json"
    credentials.touch(mode=0o600)
    credentials.write_text(json.dumps(admin))


def keycloak_home() -> Path:
    """The cached, built distribution (`dist/`) and template database (`template/`), made once per version."""
    first_run = not (cache_root() / CACHE_KEY).is_dir()
    started = time.monotonic()
    if first_run:
        print(f"auxip_testing: fetching Keycloak {KEYCLOAK_VERSION} (~177 MB) from Maven Central ...", file=sys.stderr)
    env = _java_env()

    def build(work: Path) -> None:
        archive = _distribution_zip()  # inside build: a warm cache must not need ~/.m2 any more
        print("auxip_testing: unpacking Keycloak and running `kc.sh build` (~30 s) ...", file=sys.stderr)
        dist = work / "dist"
        _unpack(archive, dist)
        _run_logged([str(dist / "bin" / "kc.sh"), "build", *BUILD_OPTIONS], env, work / "build.log", "kc.sh build", 600)
        print("auxip_testing: creating Keycloak's template database (~15 s) ...", file=sys.stderr)
        _make_template(dist, work, env)

    home = cached_dir(CACHE_KEY, build)
    if first_run:
        print(f"auxip_testing: Keycloak cached in {home} ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    return home


def _session_home(cached: Path, root: Path) -> Path:
    """This run's Keycloak home with the template database and the realm file to import; returns its kc.sh."""
    if not REALM_FILE.is_file():
        raise FileNotFoundError(f"{REALM_FILE} is missing: the harness imports the repository's realm definition")
    home = root / "home"
    shutil.rmtree(home, ignore_errors=True)  # a reused workdir must not resume an old database
    kc_sh = _private_home(cached / "dist", home)
    shutil.copytree(cached / "template" / "h2", home / "data" / "h2")
    shutil.copy2(REALM_FILE, home / "data" / "import" / REALM_FILE.name)
    return kc_sh


@contextlib.contextmanager
def run_keycloak(workdir: Path | None = None, timeout: float = 180.0) -> Iterator[KeycloakServer]:
    """Start Keycloak with the `auxip` realm and a Download test user; stop it on exit."""
    cached = keycloak_home()
    admin = json.loads((cached / "template" / "admin.json").read_text())
    with scratch_dir("auxip-keycloak-", workdir) as root:
        port, management_port = free_port(), free_port()
        server = KeycloakServer(
            base_url=f"http://{HOST}:{port}",
            realm=REALM,
            client_id=CLIENT_ID,
            client_secret=secrets.token_urlsafe(32),
            username="auxip-download-user",
            password=secrets.token_urlsafe(18),
            admin_username=admin["username"],
            admin_password=admin["password"],
            management_url=f"http://{HOST}:{management_port}",
        )
        kc_sh = _session_home(cached, root)
        process = ManagedProcess(
            name=f"keycloak:{port}",
            argv=_start_argv(kc_sh, port, management_port, import_realm=True),
            log_path=root / "keycloak.log",
            env={**_java_env(), CLIENT_SECRET_ENV: server.client_secret},
        )
        with running(process, _answers_200(server.well_known_url), timeout):
            server.create_user(server.username, server.password, realm_roles=("Download",))
            yield server


def wait_for_health(server: KeycloakServer, timeout: float = 30.0) -> None:
    """Readiness as an orchestrator sees it: the management interface's /health/ready says UP."""
    wait_until(_answers_200(f"{server.management_url}/health/ready"), timeout, "keycloak /health/ready")


@pytest.fixture(scope="session")
def keycloak(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """Keycloak with the repository's `auxip` realm, the `auxip-api` client and a user holding role Download."""
    with show_progress(request.config):
        keycloak_home()
    with run_keycloak(tmp_path_factory.mktemp("keycloak")) as server:
        yield server

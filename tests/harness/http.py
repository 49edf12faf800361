"""Private nginx instance serving a plain HTTP/HTTPS directory listing and a WebDAV endpoint on loopback.

One nginx process carries both (two `server` blocks), because it starts in milliseconds and one process is one thing
to stop. Everything nginx writes (pid, logs, request-body temp files) lives in the work directory, so it never touches
/etc/nginx or /var/lib/nginx and runs next to a system nginx. The TLS certificate comes from `auxip_testing.tls`,
the WebDAV password is generated per run.

`run_nginx()` is usable outside pytest (benchmarks); the `nginx`, `http_server` and `webdav_server` fixtures wrap it
for a test session.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from auxip_testing.process import ManagedProcess, free_port, running, scratch_dir
from auxip_testing.tls import make_ca_and_server_cert

HOST = "127.0.0.1"
DAV_EXT_MODULE_CANDIDATES = (
    Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so"),
    Path("/usr/share/nginx/modules/ngx_http_dav_ext_module.so"),
)


@dataclass(frozen=True)
class HttpServer:
    """A directory (`root`) published read-only with `autoindex` listings over HTTP and HTTPS."""

    host: str
    http_port: int
    https_port: int
    root: Path
    ca: Path

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/"

    @property
    def https_url(self) -> str:
        return f"https://{self.host}:{self.https_port}/"


@dataclass(frozen=True)
class WebDavServer:
    """A read-write WebDAV tree (`root`) behind Basic auth, over HTTP (`url`) and HTTPS (`https_url`)."""

    host: str
    port: int
    https_port: int
    root: Path
    username: str
    password: str
    ca: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def https_url(self) -> str:
        return f"https://{self.host}:{self.https_port}/"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


@dataclass(frozen=True)
class NginxServers:
    http: HttpServer
    webdav: WebDavServer
    process: ManagedProcess


def nginx_binary() -> str:
    # /usr/sbin is not on the PATH of every non-root shell, so look there explicitly.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise FileNotFoundError("nginx not found: install the Debian package `nginx` (apt-get install nginx)")
    return found


def dav_ext_module() -> Path:
    """PROPFIND/OPTIONS are not in nginx's own dav module; Debian ships them as a dynamic module."""
    for candidate in DAV_EXT_MODULE_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "ngx_http_dav_ext_module.so not found: install the Debian package `libnginx-mod-http-dav-ext`"
    )


def htpasswd_line(username: str, password: str) -> str:
    """apr1 is hashed by nginx itself (not libc crypt), so the file works with any nginx build."""
    try:
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", "-stdin"], input=password, capture_output=True, text=True, check=True
        ).stdout.strip()
    except FileNotFoundError as exc:
        raise FileNotFoundError("openssl not found: install the Debian package `openssl`") from exc
    return f"{username}:{hashed}\n"


def _config(workdir: Path, http: HttpServer, dav: WebDavServer, cert: Path, key: Path, htpasswd: Path) -> str:
    tmp = workdir / "tmp"
    # `user` is only meaningful (and only accepted silently) when the master runs as root; workers then keep root
    # so they can read any test-created file whatever its owner.
    user = "user root root;" if os.geteuid() == 0 else ""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
{user}
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log stderr notice;
load_module {dav_ext_module()};
events {{ worker_connections 256; }}
http {{
    access_log {workdir / "access.log"};
{temp_paths}
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;

    server {{
        listen {http.host}:{http.http_port};
        listen {http.host}:{http.https_port} ssl;
        root {http.root};
        location / {{ autoindex on; }}
    }}

    server {{
        listen {dav.host}:{dav.port};
        listen {dav.host}:{dav.https_port} ssl;
        root {dav.root};
        client_max_body_size 0;
        location / {{
            auth_basic "auxip webdav";
            auth_basic_user_file {htpasswd};
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS;
            dav_access user:rw group:rw all:r;
            create_full_put_path on;
            autoindex on;
        }}
    }}
}}
"""


def _answers(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


def _write_config(workdir: Path) -> tuple[HttpServer, WebDavServer, Path]:
    for sub in ("www", "dav", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)
    tls = make_ca_and_server_cert(workdir / "tls")
    http = HttpServer(HOST, free_port(), free_port(), workdir / "www", tls.ca)
    dav = WebDavServer(
        HOST, free_port(), free_port(), workdir / "dav", f"auxip-{secrets.token_hex(3)}", secrets.token_urlsafe(18),
        tls.ca,
    )  # fmt: skip
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(htpasswd_line(dav.username, dav.password))
    conf = workdir / "nginx.conf"
    conf.write_text(_config(workdir, http, dav, tls.cert, tls.key, htpasswd))
    return http, dav, conf


@contextlib.contextmanager
def run_nginx(workdir: Path | None = None, timeout: float = 30.0) -> Iterator[NginxServers]:
    """Start nginx with both servers under `workdir`, wait until a GET is answered, stop it on exit."""
    binary = nginx_binary()
    with scratch_dir("auxip-nginx-", workdir) as root:
        http, dav, conf = _write_config(root)
        process = ManagedProcess(
            name=f"nginx:{http.http_port}",
            argv=[binary, "-p", f"{root}/", "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
            log_path=root / "nginx.log",
        )
        with running(process, lambda: _answers(http.http_url), timeout):
            yield NginxServers(http=http, webdav=dav, process=process)


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServers]:
    with run_nginx(tmp_path_factory.mktemp("nginx")) as servers:
        yield servers


@pytest.fixture(scope="session")
def http_server(nginx: NginxServers) -> HttpServer:
    return nginx.http


@pytest.fixture(scope="session")
def webdav_server(nginx: NginxServers) -> WebDavServer:
    return nginx.webdav

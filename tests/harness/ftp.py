"""Private vsftpd instances (Debian's vsftpd) on loopback: plain FTP, and explicit FTPS with TLS required.

vsftpd on Debian authenticates local users through PAM only, so logins use a dedicated system account (`auxipftp`),
created on first use, whose password is generated on first use and kept in the harness cache (0600, outside the
repository) so that concurrent sessions and both instances agree on it. Each instance chroots the user into its own
data dir. `run_ftp(tls=...)` works outside pytest; the `ftp_server` and `ftps_server` fixtures wrap it.
"""

# Plain FTP is the protocol this module serves and tests, so S321 ("FTP is insecure") does not apply.
# ruff: noqa: S321

from __future__ import annotations

import contextlib
import fcntl
import ftplib
import os
import pwd
import random
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auxip_testing.cache import cache_root
from auxip_testing.process import ManagedProcess, free_port, running

VSFTPD = "/usr/sbin/vsftpd"
OPENSSL = "/usr/bin/openssl"
FTP_USER = "auxipftp"
# Debian's /etc/pam.d/vsftpd requires a shell listed in /etc/shells (pam_shells), so nologin is not an option.
FTP_USER_SHELL = "/bin/sh"
PASV_PORTS = 16
# Below the kernel's ephemeral range (32768-60999), so client sockets and free_port() never collide with PASV.
PASV_SEARCH = (20000, 32000)


@dataclass(frozen=True)
class FtpServer:
    host: str
    port: int
    username: str
    password: str = field(repr=False)  # keep it out of assertion messages and logs
    root: Path  # the chroot: remote "/" is this directory
    tls: bool
    ca_file: Path | None  # the self-signed server certificate, for FTPS clients to trust
    pasv_ports: tuple[int, int]

    def ssl_context(self) -> ssl.SSLContext:
        if self.ca_file is None:
            raise ValueError("plain FTP instance has no certificate")
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextlib.contextmanager
    def connect(self) -> Iterator[ftplib.FTP]:
        """A logged-in client; for FTPS, AUTH TLS before login and PROT P for encrypted data connections."""
        client = _login(self)
        try:
            yield client
        finally:
            with contextlib.suppress(OSError, EOFError, ftplib.Error):
                client.quit()
            client.close()


def _login(server: FtpServer) -> ftplib.FTP:
    client = ftplib.FTP_TLS(context=server.ssl_context(), timeout=10) if server.tls else ftplib.FTP(timeout=10)
    try:
        client.connect(server.host, server.port)
        client.login(server.username, server.password)  # FTP_TLS.login sends AUTH TLS first
        if isinstance(client, ftplib.FTP_TLS):
            client.prot_p()
    except BaseException:
        client.close()
        raise
    return client


def _require_binaries() -> None:
    for path, package in ((VSFTPD, "vsftpd"), (OPENSSL, "openssl")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} is missing: apt-get install {package}")


def _user_password() -> str:
    """Ensure the FTP account exists with the cached password; create both on first use."""
    secret = cache_root() / "ftp" / f"{FTP_USER}.password"
    secret.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(secret.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer of the secret and of /etc/shadow at a time
        if not secret.exists():
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        password = secret.read_text().strip()
        _ensure_account(password)
    return password


def _ensure_account(password: str) -> None:
    # vsftpd enters the home dir before local_root and refuses a missing one; "/" exists and grants nothing.
    try:
        pwd.getpwnam(FTP_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/",
             "--shell", FTP_USER_SHELL, "--comment", "AUXIP test harness FTP login", FTP_USER],
            check=True, capture_output=True,
        )  # fmt: skip
    # Re-applied every time: idempotent, and repairs an account whose password was changed behind our back.
    subprocess.run(["chpasswd"], input=f"{FTP_USER}:{password}\n", text=True, check=True, capture_output=True)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_range(count: int) -> tuple[int, int]:
    """`count` consecutive free ports; vsftpd retries another port of the range if one is taken later."""
    rng = random.Random()  # noqa: S311 - port choice, not a secret
    for _ in range(200):
        first = rng.randrange(PASV_SEARCH[0], PASV_SEARCH[1] - count)
        if all(_port_free(port) for port in range(first, first + count)):
            return first, first + count - 1
    raise RuntimeError(f"no {count} consecutive free ports in {PASV_SEARCH}")


def _self_signed_cert(root: Path) -> tuple[Path, Path]:
    cert, key = root / "ftps-cert.pem", root / "ftps-key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "7", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def _tls_settings(root: Path, tls: bool) -> dict[str, str]:
    if not tls:
        return {"ssl_enable": "NO"}
    cert, key = _self_signed_cert(root)
    return {
        "ssl_enable": "YES",
        "rsa_cert_file": str(cert),
        "rsa_private_key_file": str(key),
        "allow_anon_ssl": "NO",
        "force_local_logins_ssl": "YES",
        "force_local_data_ssl": "YES",
        # Python's ftplib (and many clients) do not resume the control connection's TLS session on data connections.
        "require_ssl_reuse": "NO",
        "ssl_ciphers": "HIGH",
    }


def _write_config(root: Path, port: int, pasv: tuple[int, int], tls: bool) -> Path:
    settings = {
        "listen": "YES",
        "listen_ipv6": "NO",
        "background": "NO",  # stay in the foreground so ManagedProcess owns the PID
        "listen_address": "127.0.0.1",
        "listen_port": str(port),
        "anonymous_enable": "NO",
        "local_enable": "YES",
        "write_enable": "YES",
        "local_umask": "022",
        "chroot_local_user": "YES",
        "allow_writeable_chroot": "YES",  # the chroot is the upload dir itself
        "local_root": str(root / "data"),
        "pam_service_name": "vsftpd",
        "secure_chroot_dir": str(root / "empty"),
        "pasv_enable": "YES",
        "pasv_address": "127.0.0.1",
        "pasv_min_port": str(pasv[0]),
        "pasv_max_port": str(pasv[1]),
        "connect_from_port_20": "NO",
        # Namespaces and the seccomp filter break in containers and sandboxes; the instance is loopback-only anyway.
        "seccomp_sandbox": "NO",
        "isolate": "NO",
        "isolate_network": "NO",
        "syslog_enable": "NO",
        "xferlog_enable": "YES",
        "xferlog_std_format": "NO",
        "log_ftp_protocol": "YES",
        # Same file as stdout/stderr (both append), so failure reports show the FTP dialogue next to startup errors.
        "vsftpd_log_file": str(root / "vsftpd.log"),
        "delay_failed_login": "0",  # PAM already adds ~2 s to each failed login
        **_tls_settings(root, tls),
    }
    config = root / "vsftpd.conf"
    config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return config


def _prepare_dirs(root: Path) -> None:
    # vsftpd drops to the FTP user before entering the data dir, so the path to it must be traversable.
    root.chmod(0o755)
    (root / "empty").mkdir(mode=0o755)
    (root / "data").mkdir()
    account = pwd.getpwnam(FTP_USER)
    os.chown(root / "data", account.pw_uid, account.pw_gid)


def _can_login(server: FtpServer) -> bool:
    # A full login (after AUTH TLS for FTPS) and a listing: proves PAM, the chroot, TLS and PASV all work.
    with server.connect() as client:
        client.nlst()
    return True


@contextlib.contextmanager
def run_ftp(tls: bool = False, timeout: float = 30.0) -> Iterator[FtpServer]:
    """Start vsftpd, plain or with TLS required; stop it and delete its files on exit (the account stays)."""
    _require_binaries()
    password = _user_password()
    root = Path(tempfile.mkdtemp(prefix="auxip-ftps-" if tls else "auxip-ftp-"))
    try:
        _prepare_dirs(root)
        port, pasv = free_port(), _free_port_range(PASV_PORTS)
        config = _write_config(root, port, pasv, tls)
        ca_file = root / "ftps-cert.pem" if tls else None
        server = FtpServer("127.0.0.1", port, FTP_USER, password, root / "data", tls, ca_file, pasv)
        name = f"vsftpd-{'ftps' if tls else 'ftp'}:{port}"
        process = ManagedProcess(name=name, argv=[VSFTPD, str(config)], log_path=root / "vsftpd.log")
        # vsftpd, like sshd, runs each connection in its own session, out of reach of the process-group stop.
        with running(process, lambda: _can_login(server), timeout):
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ftp_server() -> Iterator[FtpServer]:
    with run_ftp(tls=False) as server:
        yield server


@pytest.fixture(scope="session")
def ftps_server() -> Iterator[FtpServer]:
    with run_ftp(tls=True) as server:
        yield server

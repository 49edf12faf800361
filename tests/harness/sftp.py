"""A private OpenSSH sshd (Debian's openssh-server) serving SFTP only, on loopback, with keys made at run time.

The instance has its own config, host key and authorized_keys in a temp dir; the system sshd config is not read.
Logins are key-only for the user running the tests (root in CI) and forced into `internal-sftp`, starting in a
per-instance data dir. No ChrootDirectory: OpenSSH requires every component of its path to be root-owned and not
group/world-writable, which /tmp is not. `run_sftp()` works outside pytest; the `sftp_server` fixture wraps it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from auxip_testing.process import ManagedProcess, free_port, running

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself per connection and insists on an absolute path
SSH_KEYGEN = "/usr/bin/ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd; it refuses to start as root without it


@dataclass(frozen=True)
class SftpServer:
    host: str
    port: int
    username: str
    private_key: Path
    host_key_fingerprint: str  # "SHA256:...", as printed by ssh-keygen -l and ssh
    known_hosts_line: str
    known_hosts: Path
    root: Path  # the login directory: relative remote paths land here

    @contextlib.contextmanager
    def connect(self, private_key: Path | paramiko.PKey | None = None) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session that verifies the host key; `private_key` overrides the authorised client key."""
        with _ssh_client(self, private_key or self.private_key) as client, client.open_sftp() as sftp:
            yield sftp


@contextlib.contextmanager
def _ssh_client(server: SftpServer, key: Path | paramiko.PKey) -> Iterator[paramiko.SSHClient]:
    pkey = key if isinstance(key, paramiko.PKey) else paramiko.Ed25519Key.from_private_key_file(str(key))
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())  # a wrong host key must fail, like in production
    try:
        client.connect(
            server.host,
            port=server.port,
            username=server.username,
            pkey=pkey,
            allow_agent=False,  # only the key under test, never the developer's agent or ~/.ssh keys
            look_for_keys=False,
            timeout=5,
            banner_timeout=5,
            auth_timeout=5,
        )
        yield client
    finally:
        client.close()


def _require_binaries() -> None:
    for path, package in ((SSHD, "openssh-server"), (SSH_KEYGEN, "openssh-client")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} is missing: apt-get install {package}")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _fingerprint(public_key_line: str) -> str:
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _write_config(root: Path, port: int, username: str, extra: dict[str, str]) -> Path:
    settings = {
        "Port": str(port),
        "ListenAddress": "127.0.0.1",
        "HostKey": str(root / "ssh_host_ed25519_key"),
        "PidFile": str(root / "sshd.pid"),
        "AuthorizedKeysFile": str(root / "authorized_keys"),
        "StrictModes": "no",  # the temp dir is not the user's home; ownership checks would only get in the way
        "UsePAM": "no",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PubkeyAuthentication": "yes",
        "PermitRootLogin": "prohibit-password",
        "AllowUsers": username,
        "Subsystem": "sftp internal-sftp",
        "ForceCommand": f"internal-sftp -d {root / 'data'}",
        "AllowTcpForwarding": "no",
        "X11Forwarding": "no",
        "PrintMotd": "no",
        "MaxStartups": "100",  # parallel transfers in tests must not be throttled
        "MaxSessions": "100",
        "LogLevel": "VERBOSE",
        **extra,
    }
    config = root / "sshd_config"
    config.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
    return config


def _optional_settings(root: Path, port: int, username: str) -> dict[str, str]:
    """OpenSSH >= 9.8 penalises sources that fail auth, which would lock out loopback after a wrong-key test."""
    probe = _write_config(root, port, username, {"PerSourcePenalties": "no"})
    result = subprocess.run([SSHD, "-t", "-f", str(probe)], capture_output=True, check=False)
    return {"PerSourcePenalties": "no"} if result.returncode == 0 else {}


def _prepare(root: Path, port: int) -> SftpServer:
    username = pwd.getpwuid(os.getuid()).pw_name
    (root / "data").mkdir()
    _keygen(root / "ssh_host_ed25519_key", "auxip-test-host")
    _keygen(root / "client_ed25519", "auxip-test-client")
    shutil.copyfile(root / "client_ed25519.pub", root / "authorized_keys")
    host_public = (root / "ssh_host_ed25519_key.pub").read_text().strip()
    key_type, key_data = host_public.split()[:2]
    known_hosts_line = f"[127.0.0.1]:{port} {key_type} {key_data}"
    (root / "known_hosts").write_text(known_hosts_line + "\n")
    _write_config(root, port, username, _optional_settings(root, port, username))
    return SftpServer(
        host="127.0.0.1",
        port=port,
        username=username,
        private_key=root / "client_ed25519",
        host_key_fingerprint=_fingerprint(host_public),
        known_hosts_line=known_hosts_line,
        known_hosts=root / "known_hosts",
        root=root / "data",
    )


def _can_list(server: SftpServer) -> bool:
    # A full key login and an SFTP request: the listening port alone says nothing about auth or the subsystem.
    with server.connect() as sftp:
        sftp.listdir(".")
    return True


@contextlib.contextmanager
def run_sftp(timeout: float = 30.0) -> Iterator[SftpServer]:
    """Start sshd with SFTP only; stop it and delete its files (keys included) on exit."""
    _require_binaries()
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="auxip-sftp-"))
    try:
        port = free_port()
        server = _prepare(root, port)
        argv = [SSHD, "-D", "-e", "-f", str(root / "sshd_config")]
        process = ManagedProcess(name=f"sshd:{port}", argv=argv, log_path=root / "sshd.log")
        with running(process, lambda: _can_list(server), timeout):
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def sftp_server() -> Iterator[SftpServer]:
    with run_sftp() as server:
        yield server

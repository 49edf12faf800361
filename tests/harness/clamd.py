"""A private clamd (Debian's clamav-daemon) on loopback, loaded with test-only EICAR signatures.

No freshclam and no official database: there is no network in CI, and two tiny signatures load in well under a
second instead of the ~1 GB, 20 s official set. The database directory is private, so nothing under /var/lib/clamav
is read or written. `run_clamd()` works outside pytest; the `clamd` fixture wraps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from auxip_testing.process import ManagedProcess, free_port, running

CLAMD = "/usr/sbin/clamd"
# One name for both signatures: clamd reports the body match first even for the exact file, and clients of the
# platform should see one stable name whichever signature fired.
SIGNATURE = "Auxip-Test-EICAR"
# Third-party (non-Cisco) signatures are reported with this suffix.
FOUND_REPLY = f"stream: {SIGNATURE}.UNOFFICIAL FOUND"

# Generous limits: AUXIP products are large. libclamav caps the per-file limit at 2 GiB - 1 (and warns about any
# higher value). A stream over MaxFileSize is not scanned at all and is reported "OK" (AlertExceedsMax is off).
LIMITS = {
    "StreamMaxLength": "4000M",
    "MaxFileSize": "2047M",
    "MaxScanSize": "4000M",
}


def eicar() -> bytes:
    """The 68-byte EICAR test string, assembled at run time so no file in the repository trips a virus scanner."""
    parts = ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-", "TEST-FILE!$H+H*")
    return "".join(parts).encode("ascii")


@dataclass(frozen=True)
class ClamdServer:
    host: str
    port: int
    database_dir: Path
    version: str

    @property
    def pid_file(self) -> Path:
        # run_clamd writes it next to the database directory.
        return self.database_dir.parent / "clamd.pid"

    def scan(self, data: bytes | BinaryIO, chunk: int = 1 << 16) -> str:
        return instream_scan(self.host, self.port, data, chunk)


def _command(host: str, port: int, command: str, timeout: float = 10.0) -> str:
    """One z-prefixed (NUL-terminated) clamd command on a fresh connection; returns the reply without the NUL."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"z" + command.encode("ascii") + b"\0")
        return _read_reply(sock)


def _read_reply(sock: socket.socket) -> str:
    reply = bytearray()
    while not reply.endswith(b"\0"):
        data = sock.recv(4096)
        if not data:
            break
        reply += data
    return reply.rstrip(b"\0").decode("utf-8", errors="replace")


def ping(host: str, port: int) -> bool:
    return _command(host, port, "PING", timeout=2.0) == "PONG"


def version(host: str, port: int) -> str:
    """`ClamAV <engine>/<signature version>/<date>`; just `ClamAV <engine>` without an official database."""
    return _command(host, port, "VERSION")


def _chunks(data: bytes | BinaryIO, chunk: int) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), chunk):
            yield bytes(view[start : start + chunk])
        return
    while block := data.read(chunk):
        yield block


def write_clamdscan_config(server: ClamdServer, path: Path) -> Path:
    """A `clamdscan --config-file` for this clamd.

    clamdscan stops streaming at its own StreamMaxLength (100 MiB unless set) and still reports OK: it gets clamd's.
    """
    path.write_text(f"TCPSocket {server.port}\nTCPAddr {server.host}\nStreamMaxLength {LIMITS['StreamMaxLength']}\n")
    return path


def instream_scan(host: str, port: int, data: bytes | BinaryIO, chunk: int = 1 << 16, timeout: float = 120.0) -> str:
    """Scan `data` with the INSTREAM protocol and return clamd's raw reply.

    Replies look like `stream: OK`, `stream: <Signature> FOUND` or `INSTREAM size limit exceeded. ERROR`.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"zINSTREAM\0")
        try:
            for block in _chunks(data, chunk):
                sock.sendall(struct.pack("!I", len(block)) + block)
            sock.sendall(struct.pack("!I", 0))
        except (BrokenPipeError, ConnectionResetError):
            # clamd answers and hangs up as soon as StreamMaxLength is exceeded; its reply is still readable.
            pass
        return _read_reply(sock)


def _write_signatures(database_dir: Path) -> None:
    database_dir.mkdir()
    sample = eicar()
    # .hdb (MD5:size:name) matches the exact file; .ndb (name:target:offset:hex) matches EICAR anywhere in a stream,
    # e.g. inside a multi-GB product, where the whole-file hash cannot match.
    (database_dir / "auxip-test.hdb").write_text(f"{_md5(sample)}:{len(sample)}:{SIGNATURE}\n")
    (database_dir / "auxip-test.ndb").write_text(f"{SIGNATURE}:0:*:{sample.hex()}\n")


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _write_config(root: Path, port: int) -> Path:
    settings = {
        "Foreground": "yes",
        "TCPSocket": str(port),
        "TCPAddr": "127.0.0.1",
        "DatabaseDirectory": str(root / "db"),
        "TemporaryDirectory": str(root / "tmp"),
        "LogFile": str(root / "clamd-file.log"),
        "LogTime": "yes",
        "PidFile": str(root / "clamd.pid"),
        # No `User`: clamd keeps the uid it was started with, so the root-owned private dirs stay readable.
        "SelfCheck": "0",  # the database never changes during a session
        "ConcurrentDatabaseReload": "no",
        **LIMITS,
    }
    (root / "tmp").mkdir()
    config = root / "clamd.conf"
    config.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
    return config


@contextlib.contextmanager
def run_clamd(timeout: float = 60.0) -> Iterator[ClamdServer]:
    """Start clamd with the private EICAR database; stop it and delete its files on exit."""
    if not Path(CLAMD).is_file():
        raise FileNotFoundError(f"{CLAMD} is missing: apt-get install clamav-daemon")
    root = Path(tempfile.mkdtemp(prefix="auxip-clamd-"))
    try:
        _write_signatures(root / "db")
        port = free_port()
        config = _write_config(root, port)
        process = ManagedProcess(
            name=f"clamd:{port}", argv=[CLAMD, f"--config-file={config}"], log_path=root / "clamd.log"
        )
        with running(process, lambda: ping("127.0.0.1", port), timeout):
            yield ClamdServer("127.0.0.1", port, root / "db", version("127.0.0.1", port))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def clamd() -> Iterator[ClamdServer]:
    with run_clamd() as server:
        yield server

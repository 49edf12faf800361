"""The SFTP fixture is a real OpenSSH server: key-only logins, verified host key, byte-exact transfers."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess

import paramiko
import pytest

from auxip_testing.sftp import SftpServer

pytestmark = pytest.mark.integration


def test_put_and_get_roundtrip(sftp_server: SftpServer) -> None:
    payload = os.urandom(1 << 20)
    with sftp_server.connect() as sftp:
        sftp.mkdir("inbox")
        sftp.putfo(io.BytesIO(payload), "inbox/S1A_AUX_PP1.bin", confirm=True)
        back = io.BytesIO()
        sftp.getfo("inbox/S1A_AUX_PP1.bin", back)
    assert hashlib.sha256(back.getvalue()).hexdigest() == hashlib.sha256(payload).hexdigest()
    # Relative remote paths land in the served root, where tests can inspect or seed files directly.
    assert (sftp_server.root / "inbox" / "S1A_AUX_PP1.bin").read_bytes() == payload


def test_files_seeded_on_disk_are_served(sftp_server: SftpServer) -> None:
    (sftp_server.root / "seeded.txt").write_bytes(b"from the test\n")
    with sftp_server.connect() as sftp, sftp.open("seeded.txt", "rb") as remote:
        assert remote.read() == b"from the test\n"


def test_unknown_key_is_refused(sftp_server: SftpServer) -> None:
    intruder = paramiko.ECDSAKey.generate()
    with pytest.raises(paramiko.AuthenticationException), sftp_server.connect(intruder):
        pass


def test_host_key_is_pinned(sftp_server: SftpServer) -> None:
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(sftp_server.known_hosts)], capture_output=True, text=True, check=True
    ).stdout
    assert sftp_server.host_key_fingerprint.startswith("SHA256:")
    assert sftp_server.host_key_fingerprint in listed
    assert sftp_server.known_hosts_line.startswith(f"[127.0.0.1]:{sftp_server.port} ssh-ed25519 ")

"""The FTP fixtures are real vsftpd servers: plain FTP, and FTPS that refuses anything but TLS."""

# Plain FTP is the protocol under test, so S321 ("FTP is insecure") does not apply.
# ruff: noqa: S321

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import ssl

import pytest

from auxip_testing.ftp import FtpServer

pytestmark = pytest.mark.integration


def _roundtrip(server: FtpServer, name: str, payload: bytes) -> bytes:
    with server.connect() as client:
        client.storbinary(f"STOR {name}", io.BytesIO(payload))
        back = io.BytesIO()
        client.retrbinary(f"RETR {name}", back.write)
    return back.getvalue()


@pytest.mark.parametrize("server_fixture", ["ftp_server", "ftps_server"])
def test_put_and_get_roundtrip(server_fixture: str, request: pytest.FixtureRequest) -> None:
    server: FtpServer = request.getfixturevalue(server_fixture)
    payload = os.urandom((1 << 20) + 17)
    back = _roundtrip(server, "S1B_AUX_CAL.bin", payload)
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(payload).hexdigest()
    # The user is chrooted into `root`: what was uploaded as /S1B_AUX_CAL.bin is on disk there.
    assert (server.root / "S1B_AUX_CAL.bin").read_bytes() == payload


def test_ftps_requires_encrypted_data_connections(ftps_server: FtpServer) -> None:
    with ftps_server.connect() as client:
        assert isinstance(client, ftplib.FTP_TLS)
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}
        client.prot_c()  # ask for a clear-text data channel: force_local_data_ssl must refuse it
        with pytest.raises(ftplib.error_perm, match="522"):
            client.nlst()


def test_ftps_refuses_plain_login(ftps_server: FtpServer) -> None:
    client = ftplib.FTP(timeout=10)
    client.connect(ftps_server.host, ftps_server.port)
    try:
        with pytest.raises(ftplib.error_perm, match="530"):
            client.login(ftps_server.username, ftps_server.password)
    finally:
        client.close()


def test_ftps_certificate_is_verified(ftps_server: FtpServer) -> None:
    # Only the system CAs. An explicit context matters: FTP_TLS's default context verifies nothing at all.
    untrusted = ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=10)
    untrusted.connect(ftps_server.host, ftps_server.port)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.auth()
    finally:
        untrusted.close()


def test_wrong_password_is_refused(ftp_server: FtpServer) -> None:
    client = ftplib.FTP(timeout=10)
    client.connect(ftp_server.host, ftp_server.port)
    try:
        with pytest.raises(ftplib.error_perm, match="530"):
            client.login(ftp_server.username, ftp_server.password + "x")
    finally:
        client.close()


def test_plain_server_has_no_certificate(ftp_server: FtpServer) -> None:
    assert ftp_server.tls is False
    assert ftp_server.ca_file is None

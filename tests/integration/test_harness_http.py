"""The `http_server` fixture publishes a directory with nginx autoindex over HTTP and over HTTPS (private CA)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest
import requests

from auxip_testing.http import HttpServer
from auxip_testing.tls import make_ca_and_server_cert

pytestmark = pytest.mark.integration


def _place(directory: Path, size: int = 200_000) -> tuple[str, bytes]:
    """A file with an unpredictable name and content, so a stale or cached answer cannot pass."""
    name = f"S1A_AUX_PP1_V{secrets.token_hex(4)}.SAFE.zip"
    data = os.urandom(size)
    (directory / name).write_bytes(data)
    return name, data


def test_autoindex_lists_a_placed_file(http_server: HttpServer) -> None:
    name, data = _place(http_server.root)
    listing = requests.get(http_server.http_url, timeout=10)
    assert listing.headers["Content-Type"].startswith("text/html")
    assert f'<a href="{name}">{name}</a>' in listing.text
    # autoindex prints the size in bytes at the end of the entry's line
    line = next(line for line in listing.text.splitlines() if f'href="{name}"' in line)
    assert line.split()[-1] == str(len(data))


def test_autoindex_lists_subdirectories(http_server: HttpServer) -> None:
    sub = http_server.root / f"dir-{secrets.token_hex(3)}"
    sub.mkdir()
    name, _ = _place(sub, 10)
    root_listing = requests.get(http_server.http_url, timeout=10).text
    sub_listing = requests.get(f"{http_server.http_url}{sub.name}/", timeout=10).text
    assert f'<a href="{sub.name}/">{sub.name}/</a>' in root_listing
    assert f'<a href="{name}">{name}</a>' in sub_listing


def test_file_is_served_byte_identical_over_http(http_server: HttpServer) -> None:
    name, data = _place(http_server.root)
    response = requests.get(http_server.http_url + name, timeout=10)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(data)
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_file_is_served_byte_identical_over_https_with_the_generated_ca(http_server: HttpServer) -> None:
    name, data = _place(http_server.root)
    response = requests.get(http_server.https_url + name, verify=str(http_server.ca), timeout=10)
    assert response.content == data


def test_certificate_also_names_localhost(http_server: HttpServer) -> None:
    name, data = _place(http_server.root, 1000)
    url = f"https://localhost:{http_server.https_port}/{name}"
    assert requests.get(url, verify=str(http_server.ca), timeout=10).content == data


def test_https_is_rejected_without_the_generated_ca(http_server: HttpServer) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(http_server.https_url, verify=True, timeout=10)


def test_https_is_rejected_with_another_ca(http_server: HttpServer, tmp_path: Path) -> None:
    other = make_ca_and_server_cert(tmp_path)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(http_server.https_url, verify=str(other.ca), timeout=10)


def test_missing_file_is_404(http_server: HttpServer) -> None:
    assert requests.get(http_server.http_url + "no-such-file", timeout=10).status_code == 404

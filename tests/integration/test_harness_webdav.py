"""The `webdav_server` fixture is a real WebDAV endpoint (nginx dav + dav_ext) behind Basic auth."""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest
import requests

from auxip_testing.http import WebDavServer

pytestmark = pytest.mark.integration

DAV = "{DAV:}"


def _collection() -> str:
    """A fresh collection path per test: the server is shared by the whole session."""
    return f"inbox-{secrets.token_hex(4)}/"


def _value(element: ET.Element) -> str:
    children = [child.tag.removeprefix(DAV) for child in element]
    return ",".join(children) if children else (element.text or "")


def _propfind(webdav: WebDavServer, path: str) -> dict[str, dict[str, str]]:
    """href -> {property: value} for every resource PROPFIND (Depth 1) reports under `path`.

    A property's value is its text, or the names of its child elements (`resourcetype` -> "collection").
    """
    response = requests.request("PROPFIND", webdav.url + path, auth=webdav.auth, headers={"Depth": "1"}, timeout=10)
    assert response.status_code == 207, response.text
    result: dict[str, dict[str, str]] = {}
    # The XML comes from our own loopback nginx, not from an untrusted party.
    for entry in ET.fromstring(response.content).iter(f"{DAV}response"):  # noqa: S314
        href = unquote(entry.findtext(f"{DAV}href", ""))
        prop = entry.find(f"{DAV}propstat/{DAV}prop")
        assert prop is not None
        result[href] = {child.tag.removeprefix(DAV): _value(child) for child in prop}
    return result


def test_put_then_get_returns_identical_bytes(webdav_server: WebDavServer) -> None:
    # A nested path that does not exist yet: create_full_put_path creates the intermediate collections.
    path = f"{_collection()}sub/dir/S1B_AUX_INS_{secrets.token_hex(4)}.xml"
    data = os.urandom(300_000)
    put = requests.put(webdav_server.url + path, data=data, auth=webdav_server.auth, timeout=10)
    assert put.status_code == 201
    got = requests.get(webdav_server.url + path, auth=webdav_server.auth, timeout=10)
    assert got.content == data
    assert (webdav_server.root / path).read_bytes() == data


def test_propfind_lists_the_file_with_its_length(webdav_server: WebDavServer) -> None:
    collection = _collection()
    files = {f"a-{secrets.token_hex(3)}.bin": os.urandom(1234), f"b-{secrets.token_hex(3)}.bin": os.urandom(56789)}
    for name, data in files.items():
        put = requests.put(webdav_server.url + collection + name, data=data, auth=webdav_server.auth, timeout=10)
        assert put.status_code == 201
    listed = _propfind(webdav_server, collection)
    assert set(listed) == {f"/{collection}", *(f"/{collection}{name}" for name in files)}
    for name, data in files.items():
        assert listed[f"/{collection}{name}"]["getcontentlength"] == str(len(data))
        assert listed[f"/{collection}{name}"]["displayname"] == name
    assert listed[f"/{collection}"]["resourcetype"] == "collection"
    assert {listed[f"/{collection}{name}"]["resourcetype"] for name in files} == {""}
    assert "getcontentlength" not in listed[f"/{collection}"]


def test_mkcol_move_and_delete(webdav_server: WebDavServer) -> None:
    collection, auth = _collection(), webdav_server.auth
    assert requests.request("MKCOL", webdav_server.url + collection, auth=auth, timeout=10).status_code == 201
    data = os.urandom(100)
    requests.put(f"{webdav_server.url}{collection}part", data=data, auth=auth, timeout=10).raise_for_status()
    move = requests.request(
        "MOVE", f"{webdav_server.url}{collection}part", auth=auth, timeout=10,
        headers={"Destination": f"{webdav_server.url}{collection}final"},
    )  # fmt: skip
    assert move.status_code in (201, 204)
    assert requests.get(f"{webdav_server.url}{collection}part", auth=auth, timeout=10).status_code == 404
    assert requests.get(f"{webdav_server.url}{collection}final", auth=auth, timeout=10).content == data
    assert requests.delete(f"{webdav_server.url}{collection}final", auth=auth, timeout=10).status_code == 204
    assert not (webdav_server.root / collection / "final").exists()


@pytest.mark.parametrize("method", ["GET", "PUT", "PROPFIND", "DELETE"])
def test_requests_without_credentials_get_401(webdav_server: WebDavServer, method: str) -> None:
    response = requests.request(method, webdav_server.url + "anything", data=b"x", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_wrong_password_gets_401(webdav_server: WebDavServer) -> None:
    wrong = (webdav_server.username, webdav_server.password + "x")
    assert requests.get(webdav_server.url, auth=wrong, timeout=10).status_code == 401


def test_webdav_over_https_with_the_generated_ca(webdav_server: WebDavServer) -> None:
    path = f"{_collection()}tls.bin"
    data = os.urandom(4096)
    url = webdav_server.https_url + path
    verify = str(webdav_server.ca)
    assert requests.put(url, data=data, auth=webdav_server.auth, verify=verify, timeout=10).status_code == 201
    assert requests.get(url, auth=webdav_server.auth, verify=verify, timeout=10).content == data

"""ESA's "AUXIP Extended Compliance" collection, run unchanged with newman against a live API.

Three ways in, as operators deploy it: HTTP Basic with local users, OAuth2 password grant at the embedded token
endpoint, and OAuth2 against a real Keycloak realm (the production identity provider). The catalog is seeded with
realistic S1 products first (the suite derives its queries from what it lists), and the notification endpoint and
its call log are a real local HTTP server.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from auxip.auth import Role
from auxip_testing.api_server import ApiServer, default_config, run_api, seed_catalog
from auxip_testing.keycloak import KeycloakServer
from auxip_testing.newman import CONFORMANCE_DIR, run_collection
from auxip_testing.notification_recorder import NotificationRecorder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERNAME = "cts-user"
PASSWORD = "cts-password-1"  # noqa: S105 - a throwaway local user of this test's temporary catalog
SEEDED = 80
# Every request of the collection carries assertions; fewer than this means folders were skipped.
MIN_ASSERTIONS = 110


def iteration_data(recorder: NotificationRecorder) -> list[dict[str, str]]:
    data = json.loads((CONFORMANCE_DIR / "auxip-params.template.json").read_text())
    data[0].update(
        {
            "NotificationEndpoint": recorder.url,
            "NotificationEpUsername": recorder.username,
            "NotificationEpPassword": recorder.password,
            "ServerLogsUrl": recorder.call_logs_url,
            "subscription_auth_token": "",
        }
    )
    return list(data)


@contextlib.contextmanager
def seeded_api(data_dir: Path, **overrides: object) -> Iterator[ApiServer]:
    with run_api(default_config(data_dir, **overrides)) as server:
        server.call(seed_catalog(server.engine, server.storage, SEEDED))
        # The suite pages `startswith(Name, <first two name segments of a random product>)` with $skip=10 and wants
        # at least one product back, so every such prefix needs 11+ products: SAFE calibration files per unit
        # (`S1A_AUX`, ...) are rare in a random feed, as in operations, so they are added here.
        server.call(seed_catalog(server.engine, server.storage, 45, seed=2, product_types=("AUX_CAL", "AUX_INS")))
        server.add_user(USERNAME, PASSWORD, Role.DOWNLOAD)
        yield server


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Embedded defaults: local users, the embedded token endpoint."""
    with seeded_api(tmp_path_factory.mktemp("cts-local") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def keycloak_api(tmp_path_factory: pytest.TempPathFactory, keycloak: KeycloakServer) -> Iterator[ApiServer]:
    """Production identity: tokens from the Keycloak realm, through the AUXIP's /auth/token."""
    auth = {
        "keycloak": [{"issuer": keycloak.issuer, "jwks_url": keycloak.jwks_url}],
        "token_proxy_url": keycloak.token_url,
    }
    with seeded_api(tmp_path_factory.mktemp("cts-keycloak") / "data", auth=auth) as server:
        yield server


def local_environment(server: ApiServer, auth_type: str) -> dict[str, str]:
    return {
        "service-root-uri": server.base_url,
        "auth_type": auth_type,
        "username": USERNAME,
        "password": PASSWORD,
        "access_token_url": server.token_url,
        "client_id": "auxip-api",
        "client_secret": "",
        "scope": "openid",
        "grant_type": "password",
        "encoded_credential": base64.b64encode(b"auxip-api:").decode(),
    }


def keycloak_environment(server: ApiServer, keycloak: KeycloakServer) -> dict[str, str]:
    credential = f"{keycloak.client_id}:{keycloak.client_secret}".encode()
    return {
        "service-root-uri": server.base_url,
        "auth_type": "oauth2",
        "username": keycloak.username,
        "password": keycloak.password,
        # The AUXIP's own token URL, forwarded to Keycloak (as the API gateway does in production).
        "access_token_url": server.token_url,
        "client_id": keycloak.client_id,
        "client_secret": keycloak.client_secret,
        "scope": "openid",
        "grant_type": "password",
        "encoded_credential": base64.b64encode(credential).decode(),
    }


@pytest.mark.parametrize("mode", ["basic", "local-oauth2", "keycloak-oauth2"])
def test_conformance_suite_passes_unchanged(
    mode: str, request: pytest.FixtureRequest, notification_recorder: NotificationRecorder
) -> None:
    if mode == "keycloak-oauth2":
        environment = keycloak_environment(request.getfixturevalue("keycloak_api"), request.getfixturevalue("keycloak"))
    else:
        environment = local_environment(request.getfixturevalue("local_api"), "basic" if mode == "basic" else "oauth2")
    run = run_collection(environment, iteration_data(notification_recorder))
    failures = "\n".join(f"{f.request}: {f.assertion}: {f.error}" for f in run.failures)
    assert run.failures == [], f"{len(run.failures)} conformance assertions failed:\n{failures}\n{run.output[-4000:]}"
    assert len(run.assertions) >= MIN_ASSERTIONS, run.output[-4000:]
    assert run.returncode == 0, run.output[-4000:]
    requests_run = {a.request for a in run.assertions}
    assert {"AUXIP Product Download By ProductId", "AUXIP Subscription cancel"} <= requests_run


def test_suite_files_are_where_ci_expects_them() -> None:
    names = {path.name for path in Path(CONFORMANCE_DIR).iterdir()}
    assert {"auxip-cts.postman_collection.json", "auxip-params.template.json"} <= names

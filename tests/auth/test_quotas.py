"""Per-user quotas: parallel downloads and volume per window, both answered 429 with Retry-After."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from auxip.api.errors import ODataError
from auxip.auth import LocalIdentityStore, Principal, QuotaLimits, Quotas, QuotaSettings, Role
from auxip.auth.downloads import VolumeEntry, record_download_finish, record_download_start
from auxip.auth.quotas import limits_for, volume_retry_after
from auxip.auth.token_endpoint import LocalIssuer
from auxip.auth.validation import TokenValidator

from .conftest import ClientFactory, build_app
from .test_authenticate import PASSWORD, basic

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ALICE = Principal("alice", frozenset({Role.DOWNLOAD}), "local")
BOB = Principal("bob", frozenset({Role.DOWNLOAD}), "local")
GB = 1024**3


def _quotas(engine: Engine, **limits: object) -> Quotas:
    default = QuotaLimits(**limits)  # type: ignore[arg-type]
    return Quotas(QuotaSettings(default=default, parallel_retry_after_seconds=7), engine, clock=lambda: NOW)


def _download(engine: Engine, username: str, size: int, started: datetime) -> int:
    with Session(engine) as session:
        return record_download_start(
            session, username, uuid.uuid4(), "S1A_AUX_CAL.SAFE.zip", "AUX_CAL", size, now=started
        )


async def test_parallel_limit(engine: Engine) -> None:
    quotas = _quotas(engine, max_parallel_downloads=2)
    async with quotas.download_slot(ALICE), quotas.download_slot(ALICE):
        with pytest.raises(ODataError) as refused:
            async with quotas.download_slot(ALICE):
                pass
        assert refused.value.status == 429
        assert refused.value.code == "TooManyRequests"
        assert refused.value.headers == {"Retry-After": "7"}
        async with quotas.download_slot(BOB):  # per user
            assert quotas.active == {"alice": 2, "bob": 1}
    assert quotas.active == {}
    async with quotas.download_slot(ALICE):  # slots are released, also after errors
        pass


async def test_slot_is_released_when_the_download_fails(engine: Engine) -> None:
    quotas = _quotas(engine, max_parallel_downloads=1)
    with pytest.raises(RuntimeError):
        async with quotas.download_slot(ALICE):
            raise RuntimeError("connection reset")
    async with quotas.download_slot(ALICE):
        assert quotas.active == {"alice": 1}


async def test_volume_window(engine: Engine) -> None:
    quotas = _quotas(engine, max_bytes_per_window=10 * GB, window=timedelta(hours=24))
    _download(engine, "alice", 6 * GB, NOW - timedelta(hours=30))  # outside the window
    first = _download(engine, "alice", 4 * GB, NOW - timedelta(hours=20))
    _download(engine, "alice", 3 * GB, NOW - timedelta(hours=2))
    async with quotas.download_slot(ALICE):  # 7 GB used
        pass
    _download(engine, "alice", 3 * GB, NOW - timedelta(hours=1))  # 10 GB: limit reached
    with pytest.raises(ODataError) as refused:
        async with quotas.download_slot(ALICE):
            pass
    assert refused.value.status == 429
    # Below the limit once the 4 GB download of 20 h ago leaves the 24 h window: in 4 h.
    assert refused.value.headers == {"Retry-After": str(4 * 3600)}
    async with quotas.download_slot(BOB):
        pass
    # A failed download counts for the bytes it actually sent.
    with Session(engine) as session:
        record_download_finish(session, first, 1 * GB, "failed", now=NOW - timedelta(hours=19))
    async with quotas.download_slot(ALICE):  # 7 GB used
        pass


def test_volume_retry_after_walks_the_oldest_first() -> None:
    limits = QuotaLimits(max_bytes_per_window=100, window=timedelta(hours=1))
    entries = [
        VolumeEntry(NOW - timedelta(minutes=50), 10),
        VolumeEntry(NOW - timedelta(minutes=40), 30),
        VolumeEntry(NOW - timedelta(minutes=10), 70),
    ]
    # 110 used: dropping the 10 leaves 100 (not below), dropping the 30 too leaves 70: when that one leaves, in 20 min.
    assert volume_retry_after(entries, limits, NOW) == 20 * 60
    assert volume_retry_after(entries[1:], limits, NOW) == 20 * 60
    assert volume_retry_after(entries[2:], limits, NOW) is None
    assert volume_retry_after([VolumeEntry(NOW - timedelta(hours=1), 100)], limits, NOW) == 1  # never 0


def test_limits_per_role_and_user() -> None:
    small, large, vip = QuotaLimits(1, 10), QuotaLimits(5, 1000), QuotaLimits(50, 10**6)
    settings = QuotaSettings(
        default=QuotaLimits(2, 20), per_role={Role.DOWNLOAD: small, Role.REPORTING: large}, per_user={"vip": vip}
    )
    assert limits_for(settings, ALICE) == small
    both = Principal("carol", frozenset({Role.DOWNLOAD, Role.REPORTING}), "keycloak")
    assert limits_for(settings, both) == QuotaLimits(5, 1000)
    assert limits_for(settings, Principal("vip", frozenset({Role.DOWNLOAD}), "local")) == vip
    assert limits_for(settings, Principal("dave", frozenset({Role.ADMIN}), "local")) == QuotaLimits(2, 20)


async def test_429_over_http(
    aiohttp_client: ClientFactory,
    engine: Engine,
    store: LocalIdentityStore,
    local_validator: TokenValidator,
    local_issuer: LocalIssuer,
) -> None:
    quotas = _quotas(engine, max_parallel_downloads=1)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        build_app(store, [local_validator], local_issuer, quotas)
    )
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    ok = await client.get("/download", headers=basic("alice", PASSWORD))
    assert ok.status == 200
    assert await ok.read() == b"payload"
    async with quotas.download_slot(ALICE):  # another download of alice's in flight
        refused = await client.get("/download", headers=basic("alice", PASSWORD))
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "7"
    assert (await refused.json())["error"]["code"] == "TooManyRequests"

"""A real local notification endpoint: records what the subscription worker POSTs, and serves it as call-logs.

Runs an aiohttp server on 127.0.0.1 (free port) in its own thread and event loop, so sync and async tests (and, later,
ESA's conformance suite through `ServerLogsUrl`) can use it alike. It requires HTTP Basic auth with credentials
generated per instance, and can be switched "down": answering 503 (`set_down("503")`) or not listening at all
(`set_down("closed")`, connections refused) until `set_up()`.

`GET /call-logs` answers `{"call-logs":[{"request":{"body":{"data":"<raw body>"}}}, ...]}`, the Postman mock shape
the suite reads, listing every notification accepted (answered 200), oldest first.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from aiohttp import web

from auxip_testing.process import free_port

DownMode = Literal["503", "closed"]


@dataclass(frozen=True)
class ReceivedCall:
    body: str
    authorization: str | None
    status: int  # what the recorder answered

    def json(self) -> Any:
        return json.loads(self.body)


class NotificationRecorder:
    def __init__(self) -> None:
        self.username = "notify-" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/notification"
        self.call_logs_url = f"http://127.0.0.1:{self.port}/call-logs"
        self._calls: list[ReceivedCall] = []
        self._lock = threading.Lock()
        self._mode: DownMode | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="notification-recorder", daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> NotificationRecorder:
        self._thread.start()
        self._call(self._start_runner())
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set_down(self, mode: DownMode = "503") -> None:
        self._mode = mode
        if mode == "closed":
            self._call(self._unlisten())

    def set_up(self) -> None:
        if self._mode == "closed":
            self._call(self._listen())
        self._mode = None

    # --- what was received -----------------------------------------------------------------------------------------
    @property
    def calls(self) -> list[ReceivedCall]:
        """Every POST to the notification path, including those refused (401, 503)."""
        with self._lock:
            return list(self._calls)

    @property
    def received(self) -> list[dict[str, Any]]:
        """The parsed bodies of the accepted notifications, oldest first."""
        return [call.json() for call in self.calls if call.status == 200]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def expected_authorization(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    # --- server ------------------------------------------------------------------------------------------------------
    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start_runner(self) -> None:
        app = web.Application()
        app.router.add_post("/notification", self._notification)
        app.router.add_get("/call-logs", self._call_logs)
        self._runner = web.AppRunner(app)
        await self._runner.setup()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _unlisten(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def _notification(self, request: web.Request) -> web.Response:
        body = await request.text()
        authorization = request.headers.get("Authorization")
        if self._mode is not None:
            status = 503
        elif authorization != self.expected_authorization():
            status = 401
        else:
            status = 200
        with self._lock:
            self._calls.append(ReceivedCall(body, authorization, status))
        if status == 401:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="notifications"'})
        return web.Response(status=status)

    async def _call_logs(self, request: web.Request) -> web.Response:
        logs = [{"request": {"body": {"data": call.body}}} for call in self.calls if call.status == 200]
        return web.json_response({"call-logs": logs})


@pytest.fixture
def notification_recorder() -> Iterator[NotificationRecorder]:
    recorder = NotificationRecorder().start()
    try:
        yield recorder
    finally:
        recorder.stop()

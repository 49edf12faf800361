"""OData error bodies: every failure the API reports has the shape `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ODataError(Exception):
    """An error answered to the client; `code` is a short machine-readable word, `message` says what to fix."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "BadRequest") -> ODataError:
    return ODataError(400, code, message)


def not_found(message: str) -> ODataError:
    return ODataError(404, "NotFound", message)


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


# aiohttp's own HTTP exceptions (unknown route, wrong method) get OData bodies too.
_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 400: "BadRequest"}


@web.middleware
async def odata_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ODataError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.replace(" ", ""))
        return error_response(
            exc.status, code, exc.text or exc.reason, {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        )
    except Exception:
        # A real fault: logged with its traceback, answered without internals.
        log.exception("unhandled error on %s %s", request.method, request.path_qs)
        return error_response(500, "InternalError", "the server failed to answer this request; it has been logged")

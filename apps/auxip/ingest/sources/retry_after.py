"""HTTP answers and client failures mapped to the source error classes, shared by the HTTP-based adapters and S3.

The pipeline decides on retries from the class alone, so the mapping is the adapters' whole error policy:
404/410 mean the entry is gone, 401/403 and TLS verification failures cannot heal by retrying, 408/425/429 and 5xx
(and timeouts, refused or dropped connections) are worth another try, honouring `Retry-After` when the server sent it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from auxip.ingest.sources.base import PermanentSourceError, RemoteFileGone, SourceError, TransientSourceError

GONE = frozenset({404, 410})
REFUSED = frozenset({401, 403})
# Request timeout, too early, too many requests: the server itself says "later".
LATER = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(status: int, headers: Mapping[str, str], what: str) -> SourceError | None:
    """The classified error for an HTTP status (None below 400); `what` names the request in the message."""
    if status < 400:
        return None
    if status in GONE:
        return RemoteFileGone(f"{what}: not found at the source (HTTP {status})")
    if status in REFUSED:
        return PermanentSourceError(f"{what}: access refused (HTTP {status}); check the source credentials")
    if status in LATER or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return TransientSourceError(f"{what}: HTTP {status}", retry_after=retry_after)
    return PermanentSourceError(f"{what}: HTTP {status}")


def error_for_exception(exc: BaseException, what: str) -> SourceError:
    """The classified error for an aiohttp or socket failure raised while talking to a source."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return PermanentSourceError(
            f"{what}: TLS certificate verification failed ({exc.certificate_error}); set ca_file for a private CA"
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentSourceError(f"{what}: invalid URL: {exc}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return PermanentSourceError(f"{what}: TLS handshake failed: {exc}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        # The body ended before its announced length: the server dropped the transfer or the file was replaced.
        return RemoteFileGone(f"{what}: transfer truncated: {exc}")
    if isinstance(exc, TimeoutError):
        return TransientSourceError(f"{what}: timed out")
    return TransientSourceError(f"{what}: {type(exc).__name__}: {exc}")

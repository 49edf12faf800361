"""What wraps every `$value` transfer: the Download role, the user's quotas, and a download record."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxip.api.db import in_session
from auxip.api.download import Download
from auxip.api.observability import DOWNLOADED_BYTES, DOWNLOADS
from auxip.auth import Quotas, Role, require
from auxip.auth.downloads import FinalStatus, record_download_finish, record_download_start
from auxip.catalog.models import Attribute

QUOTAS = web.AppKey("quotas", Quotas)
DOWNLOADERS = (Role.DOWNLOAD, Role.ADMIN)


def _product_type(session: Session, download: Download) -> str:
    value = session.scalar(
        select(Attribute.value_string).where(
            Attribute.product_id == download.product.id, Attribute.name == "productType"
        )
    )
    return value or "unknown"


@contextlib.asynccontextmanager
async def download_guard(request: web.Request, download: Download) -> AsyncIterator[None]:
    principal = await require(request, *DOWNLOADERS)
    if download.length == 0:  # HEAD, 304 and 416 move no bytes: no quota, no record
        yield
        return
    async with request.config_dict[QUOTAS].download_slot(principal):

        def start(session: Session) -> int:
            return record_download_start(
                session,
                principal.username,
                download.product.id,
                download.product.name,
                _product_type(session, download),
                download.length,
            )

        record_id = await in_session(request.app, start)
        try:
            yield
        finally:
            status: FinalStatus = "completed" if download.complete else "failed"
            request.app[DOWNLOADED_BYTES].inc(download.bytes_sent)
            request.app[DOWNLOADS].labels(status).inc()
            await in_session(
                request.app, lambda session: record_download_finish(session, record_id, download.bytes_sent, status)
            )

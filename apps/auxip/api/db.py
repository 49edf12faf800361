"""Database access from async handlers: synchronous SQLAlchemy sessions run in the default thread pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.orm import Session

ENGINE = web.AppKey("engine", Engine)

T = TypeVar("T")


async def in_session(app: web.Application, work: Callable[[Session], T]) -> T:
    """Run `work` with a fresh session in a worker thread; commit is up to `work`."""
    engine = app[ENGINE]

    def run() -> T:
        with Session(engine, expire_on_commit=False) as session:
            return work(session)

    return await asyncio.to_thread(run)

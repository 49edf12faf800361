"""`LocalIdentityStore`: the `users` functions bound to an engine, with the Basic-auth cache kept coherent."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from auxip.auth import users
from auxip.auth.basic_cache import BasicAuthCache
from auxip.auth.passwords import Passwords
from auxip.auth.principal import Principal, Role


class LocalIdentityStore:
    """Synchronous (argon2 and the database block): call from a worker thread in async code."""

    def __init__(self, engine: Engine, passwords: Passwords | None = None, cache: BasicAuthCache | None = None) -> None:
        self.engine = engine
        self.passwords = passwords or Passwords()
        self.cache = cache or BasicAuthCache()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def add_user(
        self, username: str, password: str, roles: Iterable[Role], *, disabled: bool = False
    ) -> users.UserInfo:
        with self._session() as session:
            info = users.add_user(session, self.passwords, username, password, roles, disabled=disabled)
        self.cache.invalidate(username)
        return info

    def remove_user(self, username: str) -> bool:
        with self._session() as session:
            removed = users.remove_user(session, username)
        self.cache.invalidate(username)
        return removed

    def set_disabled(self, username: str, disabled: bool) -> None:
        with self._session() as session:
            users.set_disabled(session, username, disabled)
        self.cache.invalidate(username)

    def list_users(self) -> list[users.UserInfo]:
        with self._session() as session:
            return users.list_users(session)

    def verify(self, username: str, password: str) -> Principal | None:
        cached = self.cache.get(username, password)
        if cached is not None:
            return cached
        with self._session() as session:
            principal = users.verify_password(session, self.passwords, username, password)
        if principal is not None:
            self.cache.put(username, password, principal)
        return principal

"""The local identity store's operations on the `users` table; each takes a session and commits its own change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auxip.auth.models import User
from auxip.auth.passwords import Passwords
from auxip.auth.principal import Principal, Role, format_roles, parse_roles


class UserExistsError(ValueError):
    pass


class UnknownUserError(LookupError):
    pass


@dataclass(frozen=True)
class UserInfo:
    """A user as listed (never with its hash)."""

    username: str
    roles: frozenset[Role]
    created_at: datetime
    disabled: bool


def _info(user: User) -> UserInfo:
    return UserInfo(user.username, parse_roles(user.roles), user.created_at, user.disabled)


def add_user(
    session: Session,
    passwords: Passwords,
    username: str,
    password: str,
    roles: Iterable[Role],
    *,
    disabled: bool = False,
) -> UserInfo:
    if not username or ":" in username:
        raise ValueError("a username must be non-empty and without ':' (HTTP Basic separates on it)")
    user = User(
        username=username,
        password_hash=passwords.hash(password),
        roles=format_roles(roles),
        created_at=datetime.now(UTC),
        disabled=disabled,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise UserExistsError(f"user {username!r} already exists") from exc
    return _info(user)


def remove_user(session: Session, username: str) -> bool:
    """Delete a user; False when there was none."""
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        return False
    session.delete(user)
    session.commit()
    return True


def set_disabled(session: Session, username: str, disabled: bool) -> None:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise UnknownUserError(username)
    user.disabled = disabled
    session.commit()


def list_users(session: Session) -> list[UserInfo]:
    return [_info(user) for user in session.scalars(select(User).order_by(User.username))]


def verify_password(session: Session, passwords: Passwords, username: str, password: str) -> Principal | None:
    """The principal for valid credentials of an enabled user, else None.

    Unknown and disabled users still cost one argon2 verification, so response time does not tell whether a name
    exists. A hash made with older parameters is upgraded on successful login.
    """
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None or user.disabled:
        passwords.burn(password)
        return None
    if not passwords.verify(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        session.commit()
    return Principal(user.username, parse_roles(user.roles), "local")

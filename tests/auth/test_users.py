"""The local identity store: add, verify, disable, remove, and the Basic-auth cache."""

from __future__ import annotations

import pytest

from auxip.auth import LocalIdentityStore, Principal, Role
from auxip.auth.basic_cache import BasicAuthCache
from auxip.auth.passwords import Passwords
from auxip.auth.users import UnknownUserError, UserExistsError

PASSWORD = "correct horse battery staple"  # noqa: S105 - test data


def test_add_and_verify(store: LocalIdentityStore) -> None:
    info = store.add_user("alice", PASSWORD, [Role.DOWNLOAD, Role.REPORTING])
    assert info.username == "alice"
    assert info.roles == frozenset({Role.DOWNLOAD, Role.REPORTING})
    assert info.disabled is False
    assert info.created_at.tzinfo is not None
    principal = store.verify("alice", PASSWORD)
    assert principal == Principal("alice", frozenset({Role.DOWNLOAD, Role.REPORTING}), "local")


def test_password_is_stored_as_argon2id(store: LocalIdentityStore) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from auxip.auth.models import User

    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    with Session(store.engine) as session:
        stored = session.scalars(select(User.password_hash)).one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_wrong_password_and_unknown_user(store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    assert store.verify("alice", "wrong password") is None
    assert store.verify("nobody", PASSWORD) is None
    assert store.verify("ALICE", PASSWORD) is None  # usernames are exact


def test_unknown_and_disabled_users_still_cost_one_verification(
    store: LocalIdentityStore, passwords: Passwords, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_user("bob", PASSWORD, [Role.DOWNLOAD], disabled=True)
    calls: list[str] = []
    original = Passwords.verify

    def counting(self: Passwords, password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return original(self, password_hash, password)

    monkeypatch.setattr(Passwords, "verify", counting)
    assert store.verify("nobody", PASSWORD) is None
    assert store.verify("bob", PASSWORD) is None
    assert len(calls) == 2
    assert all(call.startswith("$argon2id$") for call in calls)


def test_disabled_user_is_refused_and_can_be_enabled(store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    assert store.verify("alice", PASSWORD) is not None  # now cached
    store.set_disabled("alice", True)
    assert store.verify("alice", PASSWORD) is None  # the change invalidated the cache
    assert store.list_users()[0].disabled is True
    store.set_disabled("alice", False)
    assert store.verify("alice", PASSWORD) is not None
    with pytest.raises(UnknownUserError):
        store.set_disabled("nobody", True)


def test_remove_and_list(store: LocalIdentityStore) -> None:
    store.add_user("bob", PASSWORD, [Role.REPORTING])
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD, Role.ADMIN])
    assert [(u.username, u.roles) for u in store.list_users()] == [
        ("alice", frozenset({Role.DOWNLOAD, Role.ADMIN})),
        ("bob", frozenset({Role.REPORTING})),
    ]
    assert store.verify("alice", PASSWORD) is not None
    assert store.remove_user("alice") is True
    assert store.remove_user("alice") is False
    assert store.verify("alice", PASSWORD) is None
    assert [u.username for u in store.list_users()] == ["bob"]


def test_duplicate_and_invalid_usernames(store: LocalIdentityStore) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    with pytest.raises(UserExistsError):
        store.add_user("alice", "another password", [])
    with pytest.raises(ValueError, match="':'"):
        store.add_user("a:b", PASSWORD, [])
    assert [u.username for u in store.list_users()] == ["alice"]


def test_cache_hit_skips_argon2(store: LocalIdentityStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add_user("alice", PASSWORD, [Role.DOWNLOAD])
    assert store.verify("alice", PASSWORD) is not None

    def fail(*_args: object) -> bool:
        raise AssertionError("argon2 must not run on a cache hit")

    monkeypatch.setattr(Passwords, "verify", fail)
    assert store.verify("alice", PASSWORD) == Principal("alice", frozenset({Role.DOWNLOAD}), "local")


def test_cache_expires_and_is_keyed_by_password() -> None:
    now = [1000.0]
    cache = BasicAuthCache(ttl_seconds=60, max_entries=2, clock=lambda: now[0])
    alice = Principal("alice", frozenset({Role.DOWNLOAD}), "local")
    cache.put("alice", "pw1", alice)
    assert cache.get("alice", "pw1") == alice
    assert cache.get("alice", "pw2") is None
    now[0] += 60.0
    assert cache.get("alice", "pw1") is None
    cache.put("a", "x", alice)
    cache.put("b", "x", alice)
    cache.put("c", "x", alice)  # over max_entries: the oldest goes
    assert cache.get("a", "x") is None
    assert cache.get("c", "x") == alice
    cache.invalidate("c")
    assert cache.get("c", "x") is None
    assert cache.get("b", "x") == alice

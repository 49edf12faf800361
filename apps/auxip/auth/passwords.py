"""argon2id password hashing, with a dummy verification for unknown users so timing does not reveal who exists."""

from __future__ import annotations

import secrets
from functools import cached_property

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords; `hasher` defaults to argon2-cffi's RFC 9106 low-memory profile (argon2id)."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self.hasher = hasher or argon2.PasswordHasher()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    @cached_property
    def _dummy_hash(self) -> str:
        # Same parameters as real hashes, so verifying it costs the same time as verifying a real user's.
        return self.hasher.hash(secrets.token_urlsafe(16))

    def burn(self, password: str) -> None:
        """Spend the time of one verification, for a user that does not exist (or is disabled)."""
        self.verify(self._dummy_hash, password)

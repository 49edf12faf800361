"""A short-lived cache of successful Basic-auth verifications.

argon2 is deliberately slow (tens of ms and 64 MiB per verification), and Basic clients send the password on every
call: without a cache, hashing would cap the request rate. Entries are keyed by (username, HMAC(password)) under a
per-process random key, so the cache never holds a plain or an offline-crackable digest of a password. Only successes
are cached; a user change invalidates that user's entries at once in this process, and the TTL bounds staleness for
changes made elsewhere (another worker, the CLI).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from auxip.auth.principal import Principal


class BasicAuthCache:
    def __init__(
        self, ttl_seconds: float = 60.0, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()  # verifications run in worker threads

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def get(self, username: str, password: str) -> Principal | None:
        key = (username, self._digest(password))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, principal = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            return principal

    def put(self, username: str, password: str, principal: Principal) -> None:
        with self._lock:
            self._entries[(username, self._digest(password))] = (self._clock() + self.ttl_seconds, principal)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # oldest insertion first

    def invalidate(self, username: str) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == username]:
                del self._entries[key]

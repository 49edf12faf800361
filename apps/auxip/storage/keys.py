"""Object keys: relative `/`-separated paths, validated once here so no backend can be steered outside its root.

Rejected rather than normalised: a key that needs cleaning is a bug or an attack upstream, and silently mapping two
spellings onto one file would let one product overwrite another.
"""

from __future__ import annotations

from auxip.storage.base import InvalidKeyError

MAX_KEY_LENGTH = 1024  # Product.storage_key is String(1024); S3 allows 1024 bytes too.


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative path, else raise `InvalidKeyError`."""
    if not key:
        raise InvalidKeyError(key, "empty")
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:
        raise InvalidKeyError(key, f"longer than {MAX_KEY_LENGTH} bytes")
    if any(ord(char) < 0x20 or char == "\x7f" for char in key):
        raise InvalidKeyError(key, "contains a control character")
    if "\\" in key:
        # A separator on Windows and in some S3 gateways' filesystem backends.
        raise InvalidKeyError(key, "contains a backslash")
    if key.startswith("/"):
        raise InvalidKeyError(key, "absolute path")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(key, "empty, '.' or '..' path segment")
        if part.startswith(".tmp-"):
            # Reserved for the local backend's in-flight temporary files.
            raise InvalidKeyError(key, "segment starts with the reserved prefix '.tmp-'")
    return key

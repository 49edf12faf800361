"""`open_storage(url)`: the one place that maps a storage URL onto a backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from auxip.storage.base import Storage
from auxip.storage.local import LocalStorage
from auxip.storage.s3 import S3Storage
from auxip.storage.settings import S3Settings


class StorageURLError(ValueError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid storage URL {url!r}: {reason}")
        self.url = url


def open_storage(url: str, settings: S3Settings | None = None) -> Storage:
    """`file:///absolute/dir` (must exist) or `s3://bucket[/prefix]` (endpoint and credentials from `settings`)."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise StorageURLError(url, "query strings and fragments are not supported")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageURLError(url, "file URLs must be local: file:///absolute/path")
        path = Path(unquote(parts.path))
        if not path.is_absolute():
            raise StorageURLError(url, "the path must be absolute")
        if not path.is_dir():
            raise StorageURLError(url, f"{path} is not an existing directory")
        return LocalStorage(path)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageURLError(url, "missing bucket name: s3://bucket/prefix")
        return S3Storage(parts.netloc, unquote(parts.path).strip("/"), settings)
    raise StorageURLError(url, f"unsupported scheme {parts.scheme!r}; use file:// or s3://")

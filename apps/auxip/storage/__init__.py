"""Where product bytes live: one small `Storage` protocol and its backends.

Modules, one job each:
- `base`: the `Storage` protocol, `ObjectInfo` and the storage errors;
- `keys`: object key validation shared by every backend (no path traversal, no surprises in S3 keys);
- `ranges`: byte ranges, and resolving an HTTP `Range` header against an object size;
- `local`: a local directory (`file:///path`), atomic writes (temp file + fsync + rename);
- `s3`: an S3-compatible bucket (`s3://bucket/prefix`), boto3 in worker threads, multipart uploads, ranged GETs;
- `settings`: typed S3 endpoint/credential settings;
- `factory`: `open_storage(url, settings)`.
"""

from auxip.storage.base import (
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    Storage,
    StorageError,
)
from auxip.storage.factory import StorageURLError, open_storage
from auxip.storage.keys import validate_key
from auxip.storage.local import LocalStorage
from auxip.storage.ranges import ByteRange, RangeNotSatisfiableError, parse_range_header
from auxip.storage.s3 import S3Storage
from auxip.storage.settings import S3Settings

__all__ = [
    "ByteRange",
    "InvalidKeyError",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFoundError",
    "RangeNotSatisfiableError",
    "S3Settings",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageURLError",
    "open_storage",
    "parse_range_header",
    "validate_key",
]

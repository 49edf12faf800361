"""`open_source(settings)`: the one place that maps a source URL scheme onto its adapter."""

from __future__ import annotations

import importlib

from auxip.ingest.sources.base import Source
from auxip.ingest.sources.credentials import VaultReader, resolve
from auxip.ingest.sources.settings import SourceSettings
from auxip.ingest.sources.throttle import Throttle

#: scheme -> (module, class). Imported on use, so a deployment only loads the protocol clients it needs.
ADAPTERS = {
    "file": ("auxip.ingest.sources.local", "LocalSource"),
    "sftp": ("auxip.ingest.sources.sftp", "SftpSource"),
    "ftp": ("auxip.ingest.sources.ftp", "FtpSource"),
    "ftps": ("auxip.ingest.sources.ftp", "FtpSource"),
    "http": ("auxip.ingest.sources.http", "HttpListingSource"),
    "https": ("auxip.ingest.sources.http", "HttpListingSource"),
    "webdav": ("auxip.ingest.sources.webdav", "WebDavSource"),
    "webdavs": ("auxip.ingest.sources.webdav", "WebDavSource"),
    "s3": ("auxip.ingest.sources.s3", "S3Source"),
    "odata": ("auxip.ingest.sources.odata", "ODataSource"),
    "odatas": ("auxip.ingest.sources.odata", "ODataSource"),
}


def open_source(settings: SourceSettings, vault: VaultReader | None = None) -> Source:
    module_name, class_name = ADAPTERS[settings.scheme]
    adapter = getattr(importlib.import_module(module_name), class_name)
    source: Source = adapter(settings, resolve(settings.credentials, vault=vault), Throttle(settings.bandwidth_limit))
    return source

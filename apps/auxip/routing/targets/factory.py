"""`open_target(settings)`: the one place that maps a target URL scheme onto its adapter."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import urlsplit

from auxip.ingest.sources.credentials import VaultReader, resolve
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import Target

#: scheme -> (module, class). Imported on use, so a deployment only loads the protocol clients it needs.
ADAPTERS = {
    "file": ("auxip.routing.targets.local", "LocalTarget"),
    "sftp": ("auxip.routing.targets.sftp", "SftpTarget"),
    "ftp": ("auxip.routing.targets.ftp", "FtpTarget"),
    "ftps": ("auxip.routing.targets.ftp", "FtpTarget"),
    "s3": ("auxip.routing.targets.s3", "S3Target"),
    "http": ("auxip.routing.targets.http", "HttpTarget"),
    "https": ("auxip.routing.targets.http", "HttpTarget"),
    "inbox": ("auxip.routing.targets.inbox", "InboxTarget"),
}


def open_target(settings: TargetSettings, inbox_root: Path | None = None, vault: VaultReader | None = None) -> Target:
    """The adapter for `settings`; `inbox_root` is where hosted applications' inboxes are mounted (`inbox://`)."""
    scheme = urlsplit(settings.url).scheme
    module_name, class_name = ADAPTERS[scheme]
    adapter = getattr(importlib.import_module(module_name), class_name)
    credentials = resolve(settings.credentials, vault=vault)
    target: Target = adapter(settings, credentials, inbox_root) if scheme == "inbox" else adapter(settings, credentials)
    return target

"""The inbox of an application hosted on the platform: `inbox://<app name>` is `<inbox_root>/<app name>/inbox/`.

That is the local layout. An application listed in the configuration's `inboxes` (the `auxip-routes` ConfigMap lists
every hosted application's S3 inbox) never reaches this adapter: its `inbox://` targets are resolved when the
configuration is loaded into the target its inbox is (`auxip.routing.settings.resolve_inbox`), an S3 target on the
exchange bucket's `<prefix>/<app>/inbox/` or a local one.

The local inbox is a volume the hosted application also mounts (local or shared filesystem), so delivery is the local
target's: a hidden temporary name in the inbox itself, flushed, verified (size and MD5), then renamed into place.
The inbox is never created here: it belongs to the application's deployment, and a missing one means the application
is not (or no longer) deployed, which retrying cannot fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from auxip.ingest.sources.credentials import Credentials
from auxip.routing.settings import APP_NAME as APP_NAME_PATTERN
from auxip.routing.settings import TargetSettings
from auxip.routing.targets.base import PermanentTargetError
from auxip.routing.targets.local import DirectoryTarget

#: The hosted application names the platform accepts (one path segment, never `.` or `..`).
APP_NAME = re.compile(APP_NAME_PATTERN)


class InboxTarget(DirectoryTarget):
    def __init__(self, settings: TargetSettings, credentials: Credentials, inbox_root: Path | None = None) -> None:
        parts = urlsplit(settings.url)
        app = parts.netloc
        if parts.scheme != "inbox" or not APP_NAME.fullmatch(app) or parts.path not in ("", "/"):
            raise PermanentTargetError(f"{settings.name}: {settings.url!r} is not an inbox://<application name> URL")
        if inbox_root is None:
            raise PermanentTargetError(f"{settings.name}: no inbox root is configured for hosted applications")
        super().__init__(settings, inbox_root / app / "inbox")
